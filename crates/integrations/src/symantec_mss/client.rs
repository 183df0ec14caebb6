//! The SWS SOAP 1.2 client: envelopes with escaped fields, faults turned into readable errors,
//! and the operations the commands use.

use chrono::{DateTime, Utc};
use reqwest::Method;
use watchfloor_core::xml::{self, Element, escape};

use super::config::Settings;
use crate::CommandError;
use crate::http::{Call, HttpClient, Payload};

const PATH: &str = "/SWS/incidents.asmx";
const NS: &str = "https://www.monitoredsecurity.com/";
const CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";

/// The SWS incidents service of one instance.
pub struct Sws {
    http: HttpClient,
}

/// SWS's timestamp form: ISO 8601 with milliseconds and `Z`.
pub fn sws_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A SOAP 1.2 envelope for `operation`; fields without a value are left out.
pub fn envelope(operation: &str, fields: &[(&str, Option<&str>)]) -> String {
    let children: String = fields
        .iter()
        .filter_map(|(name, value)| {
            value
                .filter(|v| !v.is_empty())
                .map(|v| format!("<{name}>{}</{name}>", escape(v)))
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap12:Envelope xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:soap12=\"http://www.w3.org/2003/05/soap-envelope\">\
         <soap12:Body><{operation} xmlns=\"{NS}\">{children}</{operation}></soap12:Body></soap12:Envelope>"
    )
}

/// A SOAP Fault's code and reason, e.g. `soap:Sender: Incident 1 was not found`.
pub fn fault_message(body: &str) -> Option<String> {
    let doc = xml::parse(body).ok()?;
    let fault = doc.find("Fault")?;
    let code = fault.find("Value").map(Element::text).unwrap_or_default();
    let reason = fault
        .find("Text")
        .map(Element::text)
        .or_else(|| fault.child_text("faultstring"))
        .unwrap_or_default();
    Some(match code {
        "" => format!("SOAP fault: {reason}"),
        code => format!("SOAP fault {code}: {reason}"),
    })
}

impl Sws {
    pub fn new(settings: &Settings) -> Result<Self, CommandError> {
        let http = HttpClient::new("Symantec MSS", &settings.server, None, &settings.http)?
            .with_error_reader(fault_message);
        Ok(Sws { http })
    }

    /// Calls `operation` and returns the parsed response document.
    pub async fn call(
        &self,
        operation: &str,
        fields: &[(&str, Option<&str>)],
    ) -> Result<Element, CommandError> {
        let body = envelope(operation, fields);
        let call = Call {
            method: &Method::POST,
            path: PATH,
            query: &[],
            payload: Payload::Raw {
                content_type: CONTENT_TYPE,
                body: &body,
            },
            cookie: None,
        };
        let reply = self.http.call(call).await?;
        let doc = xml::parse(&reply.text).map_err(|e| {
            CommandError::Provider(format!(
                "unreadable SOAP response from Symantec MSS {operation}: {e}"
            ))
        })?;
        if doc.find("Fault").is_some() {
            return Err(CommandError::Provider(
                fault_message(&reply.text).unwrap_or_else(|| "SOAP fault".into()),
            ));
        }
        Ok(doc)
    }

    /// IncidentGetList: summaries of incidents created at or after `start`, in server order.
    pub async fn incidents(
        &self,
        start: DateTime<Utc>,
        severities: &[String],
        source_ip: Option<&str>,
        max: Option<u32>,
    ) -> Result<Vec<serde_json::Value>, CommandError> {
        let start = sws_time(start);
        let severities = severities.join(",");
        let max = max.map(|m| m.to_string());
        let doc = self
            .call(
                "IncidentGetList",
                &[
                    ("StartTimeStampGMT", Some(&start)),
                    ("SourceIP", source_ip),
                    ("Severity", Some(&severities)),
                    ("MaxIncidents", max.as_deref()),
                ],
            )
            .await?;
        let mut found = Vec::new();
        doc.find_all("SecurityIncidentSummary", &mut found);
        Ok(found.into_iter().map(Element::to_json).collect())
    }

    /// IncidentWorkflowQuery: the incident with its workflow.
    pub async fn incident(&self, number: &str) -> Result<Element, CommandError> {
        let doc = self
            .call("IncidentWorkflowQuery", &[("IncidentNumber", Some(number))])
            .await?;
        doc.find("SecurityIncident").cloned().ok_or_else(|| {
            CommandError::Provider(format!(
                "Symantec MSS returned no SecurityIncident for incident {number}"
            ))
        })
    }

    /// UpdateIncidentWorkflow; true when the service confirms.
    pub async fn update(&self, fields: &[(&str, Option<&str>)]) -> Result<bool, CommandError> {
        let doc = self.call("UpdateIncidentWorkflow", fields).await?;
        Ok(doc
            .find("UpdateIncidentWorkflowResult")
            .is_some_and(|r| r.text().eq_ignore_ascii_case("true")))
    }
}

/// A timestamp of SWS's, to the millisecond as SWS keeps them: UTC written without an
/// offset, or with one, which is converted.
pub fn utc_time(raw: &str) -> Option<chrono::DateTime<Utc>> {
    use chrono::SubsecRound;
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
        .map(|t| t.trunc_subsecs(3))
}

/// A timestamp as explicit UTC (`…Z`, see [`utc_time`]). Text that is not a timestamp is
/// kept as it is.
pub fn utc_timestamp(raw: &str) -> String {
    match utc_time(raw) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_escape_once_and_leave_out_empty_fields() {
        let body = envelope(
            "UpdateIncidentWorkflow",
            &[
                ("IncidentNumber", Some("7")),
                ("Comments", Some("a & <b>")),
                ("Reference", None),
                ("Status", Some("")),
            ],
        );
        assert!(body.contains("<UpdateIncidentWorkflow xmlns=\"https://www.monitoredsecurity.com/\"><IncidentNumber>7</IncidentNumber><Comments>a &amp; &lt;b&gt;</Comments></UpdateIncidentWorkflow>"), "{body}");
        let parsed = xml::parse(&body).unwrap();
        assert_eq!(parsed.find("Comments").unwrap().text(), "a & <b>");
    }

    #[test]
    fn timestamps_keep_their_seconds() {
        let t = DateTime::parse_from_rfc3339("2024-05-02T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(sws_time(t), "2024-05-02T12:00:00.000Z");
    }

    #[test]
    fn faults_read_as_code_and_reason() {
        let body = r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang="en">Incident 1 was not found</soap:Text></soap:Reason></soap:Fault></soap:Body></soap:Envelope>"#;
        assert_eq!(
            fault_message(body).as_deref(),
            Some("SOAP fault soap:Sender: Incident 1 was not found")
        );
        assert_eq!(fault_message("<html>oops</html>"), None);
    }

    #[test]
    fn timestamps_are_written_as_utc() {
        for (raw, expected) in [
            ("2024-05-02T13:55:12.120", "2024-05-02T13:55:12.120Z"),
            ("2024-05-02T13:55:12", "2024-05-02T13:55:12.000Z"),
            (
                "2017-12-20T10:04:35.4355923+00:00",
                "2017-12-20T10:04:35.435Z",
            ),
            ("2024-05-02T15:55:12.120+02:00", "2024-05-02T13:55:12.120Z"),
            ("", ""),
            ("not a time", "not a time"),
        ] {
            assert_eq!(utc_timestamp(raw), expected, "{raw}");
        }
    }
}
