//! What is not an indicator worth keeping: private and reserved address ranges (by default),
//! and the install's own list of networks, domains (`*.corp.example`) and values.

use std::net::IpAddr;

use crate::{Indicator, Kind};

/// An exclusion list, read from `[indicators] exclude`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusions {
    networks: Vec<(IpAddr, u8)>,
    /// `*.corp.example`: the domain and every name under it.
    domains: Vec<String>,
    values: Vec<String>,
    /// Private and reserved ranges too (the default).
    reserved: bool,
}

/// Whether an address is private or reserved: loopback, private (RFC 1918, unique local),
/// carrier-grade NAT, link-local, multicast, unspecified or broadcast.
pub fn reserved(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xffc0) == 0xfe80
                || (first & 0xfe00) == 0xfc00
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| reserved(IpAddr::V4(v4)))
        }
    }
}

fn in_network(ip: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl Exclusions {
    /// Nothing but private and reserved ranges (the default).
    pub fn default_reserved() -> Exclusions {
        Exclusions {
            reserved: true,
            ..Exclusions::default()
        }
    }

    /// The list as the config writes it; `reserved` adds private and reserved ranges. An
    /// entry that is none of a network, a `*.domain` or a value is named in the error.
    pub fn parse(entries: &[String], reserved: bool) -> Result<Exclusions, String> {
        let mut out = Exclusions {
            reserved,
            ..Exclusions::default()
        };
        for entry in entries {
            let e = entry.trim().to_ascii_lowercase();
            if let Some((addr, bits)) = e.split_once('/') {
                let ip: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("`{entry}` is not a network such as 10.0.0.0/8"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits: u8 = bits
                    .parse()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("`{entry}`: a prefix length is 0 to {max}"))?;
                out.networks.push((ip, bits));
            } else if let Some(domain) = e.strip_prefix("*.") {
                if domain.is_empty() || !domain.contains('.') {
                    return Err(format!(
                        "`{entry}` excludes too much: name a domain, e.g. *.corp.example"
                    ));
                }
                out.domains.push(domain.to_string());
            } else if e.is_empty() {
                return Err("an empty entry excludes nothing: remove it".into());
            } else {
                out.values.push(match e.parse::<IpAddr>() {
                    Ok(ip) => ip.to_string(),
                    Err(_) => e,
                });
            }
        }
        Ok(out)
    }

    /// Whether `i` is excluded.
    pub fn excludes(&self, i: &Indicator) -> bool {
        if self.values.contains(&i.value) {
            return true;
        }
        let under = |d: &str| {
            self.domains
                .iter()
                .any(|x| d == x || d.ends_with(&format!(".{x}")))
        };
        match i.kind {
            Kind::Ip => i.value.parse::<IpAddr>().is_ok_and(|ip| {
                (self.reserved && reserved(ip)) || self.networks.iter().any(|n| in_network(ip, *n))
            }),
            Kind::Cidr => i
                .value
                .split('/')
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_some_and(|ip| {
                    (self.reserved && reserved(ip))
                        || self.networks.iter().any(|n| in_network(ip, *n))
                }),
            Kind::Domain | Kind::Host => under(&i.value),
            Kind::Email => i.value.rsplit('@').next().is_some_and(under),
            Kind::Url => crate::url_host(&i.value).is_some_and(|h| {
                under(&h)
                    || h.parse::<IpAddr>().is_ok_and(|ip| {
                        (self.reserved && reserved(ip))
                            || self.networks.iter().any(|n| in_network(ip, *n))
                    })
            }),
            Kind::Md5 | Kind::Sha1 | Kind::Sha256 | Kind::User => false,
        }
    }

    /// `found` without what is excluded.
    pub fn keep(&self, found: Vec<Indicator>) -> Vec<Indicator> {
        found.into_iter().filter(|i| !self.excludes(i)).collect()
    }
}
