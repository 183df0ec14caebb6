//! E-mail over SMTP with lettre: `smtp://` upgrades with STARTTLS when the server offers it,
//! `smtps://` speaks TLS from the start; certificates are verified, against the system's roots
//! and the channel's `ca_file` if it has one. A plain-text and an HTML part, provider text
//! escaped in the HTML one.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use watchfloor_core::channel::{ChannelConfig, SmtpServer};

use crate::escape;
use crate::{Outgoing, SendError};

const TIMEOUT: Duration = Duration::from_secs(20);

/// The plain-text body.
pub fn plain(m: &Outgoing) -> String {
    if m.test {
        return "This is a test message from watchfloor: the channel works.\n".into();
    }
    let mut out = String::new();
    if let Some(r) = &m.report {
        out.push_str(&format!(
            "The security monitoring report of {} for {} is attached (HTML; it prints to PDF from a browser), with its incidents as CSV.\n\n",
            r.organization, r.period
        ));
        for line in &r.summary {
            out.push_str(line);
            out.push('\n');
        }
        return out;
    }
    if m.digest {
        out.push_str(&format!(
            "{} incidents were notified while this channel was at its hourly limit:\n\n",
            m.items.len()
        ));
    }
    for i in &m.items {
        out.push_str(&format!(
            "Incident {}: {}\nSeverity: {}\nOrganization: {}\nStatus: {}\nOwner: {}\nSLA: {}\nRule: {} (on {})\n",
            i.incident_id,
            i.name,
            i.severity,
            i.organization.as_deref().unwrap_or("(none)"),
            i.status,
            i.owner.as_deref().unwrap_or("(unassigned)"),
            i.sla,
            i.rule,
            i.trigger,
        ));
        if let Some(link) = &i.link {
            out.push_str(&format!("Open: {link}\n"));
        }
        out.push('\n');
    }
    out
}

/// The HTML body, every provider value escaped.
pub fn html(m: &Outgoing) -> String {
    if let Some(r) = &m.report {
        return r.html.clone();
    }
    let e = escape::html;
    let mut out = String::from("<!doctype html><html><body style=\"font-family:sans-serif\">");
    out.push_str(&format!("<h3>{}</h3>", e(&m.subject())));
    if m.test {
        out.push_str("<p>This is a test message from watchfloor: the channel works.</p>");
    }
    if !m.items.is_empty() {
        out.push_str("<table cellpadding=\"4\" border=\"1\" style=\"border-collapse:collapse\"><tr><th>Incident</th><th>Name</th><th>Severity</th><th>Organization</th><th>Status</th><th>Owner</th><th>SLA</th><th>Rule</th></tr>");
        for i in &m.items {
            let id = match &i.link {
                Some(link) => format!("<a href=\"{}\">{}</a>", e(link), i.incident_id),
                None => i.incident_id.to_string(),
            };
            out.push_str(&format!(
                "<tr><td>{id}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&i.name),
                e(&i.severity),
                e(i.organization.as_deref().unwrap_or("")),
                e(&i.status),
                e(i.owner.as_deref().unwrap_or("unassigned")),
                e(&i.sla),
                e(&i.rule),
            ));
        }
        out.push_str("</table>");
    }
    out.push_str("</body></html>");
    out
}

fn mailbox(s: &str, key: &str) -> Result<Mailbox, SendError> {
    s.parse()
        .map_err(|e| SendError::Config(format!("`{key}` is not an address ({s}): {e}")))
}

pub(crate) async fn send(channel: &ChannelConfig, m: &Outgoing) -> Result<(), SendError> {
    let server = SmtpServer::parse(channel.smtp.as_deref().unwrap_or_default())
        .map_err(SendError::Config)?;
    let (implicit, host, port) = (server.implicit_tls, server.host, server.port);
    let mut tls = TlsParameters::builder(host.clone());
    if let Some(ca) = &channel.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| SendError::Config(format!("cannot read ca_file {}: {e}", ca.display())))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            SendError::Config(format!(
                "ca_file {} is not a PEM certificate: {e}",
                ca.display()
            ))
        })?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls
        .build_rustls()
        .map_err(|e| SendError::Config(format!("TLS: {e}")))?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(TIMEOUT))
        .tls(match implicit {
            true => Tls::Wrapper(tls),
            false => Tls::Opportunistic(tls),
        });
    if let Some(user) = &channel.username {
        let password = match &channel.password {
            Some(p) => p
                .read()
                .map_err(|e| SendError::Config(format!("`password`: {e}")))?
                .expose()
                .to_string(),
            None => String::new(),
        };
        transport = transport.credentials(Credentials::new(user.clone(), password));
    }
    let mut builder = Message::builder()
        .message_id(Some(format!("<{}@watchfloor>", m.id)))
        .from(mailbox(
            channel.from.as_deref().unwrap_or_default(),
            "from",
        )?)
        .subject(m.subject());
    for to in &channel.to {
        builder = builder.to(mailbox(to, "to")?);
    }
    let body = MultiPart::alternative_plain_html(plain(m), html(m));
    let body = match &m.report {
        // The report's page is the HTML part; its incidents go along as a CSV file.
        Some(r) => MultiPart::mixed().multipart(body).singlepart(
            Attachment::new(format!("incidents-{}.csv", r.period)).body(
                r.csv.clone(),
                ContentType::parse("text/csv; charset=utf-8")
                    .map_err(|e| SendError::Config(format!("cannot build the message: {e}")))?,
            ),
        ),
        None => body,
    };
    let email = builder
        .multipart(body)
        .map_err(|e| SendError::Config(format!("cannot build the message: {e}")))?;
    transport
        .build()
        .send(email)
        .await
        .map(|_| ())
        .map_err(|e| SendError::Refused(format!("the SMTP server: {e}")))
}
