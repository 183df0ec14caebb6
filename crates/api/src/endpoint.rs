//! What the native API's docs say of each route: the description the router, the README's
//! table and the OpenAPI document are all made from.

/// One route of the native API, as the README and the OpenAPI document describe it. The router
/// is built from the same list (`routes::native`), so the docs cannot name a route that is not served.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    /// What it does, for the docs.
    pub summary: &'static str,
    /// What it takes: the JSON body's fields, or the query parameters.
    pub takes: &'static str,
    /// Whether it needs an API key or a session.
    pub authenticated: bool,
    /// What it answers, in the notation of [`crate::schemas`]: `Incident`, `201 Entry`,
    /// `204`, `text`.
    pub returns: &'static str,
}

impl Endpoint {
    /// This route answers `returns` (see [`crate::schemas::answer`]).
    pub(crate) const fn returns(self, returns: &'static str) -> Endpoint {
        Endpoint { returns, ..self }
    }
}

pub(crate) const fn ep(
    method: &'static str,
    path: &'static str,
    takes: &'static str,
    summary: &'static str,
) -> Endpoint {
    Endpoint {
        method,
        path,
        summary,
        takes,
        authenticated: true,
        returns: "",
    }
}

/// A route that needs no key.
pub(crate) const fn public(
    method: &'static str,
    path: &'static str,
    takes: &'static str,
    summary: &'static str,
) -> Endpoint {
    Endpoint {
        authenticated: false,
        ..ep(method, path, takes, summary)
    }
}
