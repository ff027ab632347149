//! Parsing the SigV4 `Authorization` header and the request date (`X-Amz-Date` or `Date`).

use super::*;

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
/// Signature=...`.
#[derive(Debug)]
pub(super) struct Authorization<'a> {
    pub(super) access_key_id: &'a str,
    pub(super) scope_date: &'a str,
    pub(super) region: &'a str,
    pub(super) service: &'a str,
    pub(super) terminator: &'a str,
    pub(super) signed_headers: Vec<String>,
    pub(super) signature: &'a str,
}

impl<'a> Authorization<'a> {
    pub(super) fn parse(value: &'a str) -> Result<Self, AuthError> {
        let value = value.trim();
        let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
        if algorithm != ALGORITHM {
            return Err(incomplete(format!(
                "Unsupported AWS 'algorithm': {}; sign requests with {ALGORITHM} (Signature \
                 Version 4)",
                shown(algorithm)
            )));
        }
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        let parts = if rest.trim().is_empty() { None } else { Some(rest.split(',')) };
        for part in parts.into_iter().flatten() {
            let part = part.trim();
            // No SDK sends an empty parameter (`,,`): a header that has one was changed on the way.
            if part.is_empty() {
                return Err(incomplete(
                    "Authorization header has an empty parameter (two commas in a row, or a \
                     trailing comma); send Credential=..., SignedHeaders=..., Signature=..."
                        .to_string(),
                ));
            }
            let Some((name, value)) = part.split_once('=') else {
                return Err(incomplete(format!(
                    "Authorization header parameter {} is not of the form name=value",
                    shown(part)
                )));
            };
            let slot = match name.trim() {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                // Unknown parameters are ignored, as AWS does.
                _ => continue,
            };
            if slot.replace(value.trim()).is_some() {
                return Err(incomplete(format!(
                    "Authorization header has more than one '{}' parameter",
                    name.trim()
                )));
            }
        }
        let missing: Vec<String> = [
            ("Credential", credential.is_none()),
            ("Signature", signature.is_none()),
            ("SignedHeaders", signed_headers.is_none()),
        ]
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(name, _)| format!("Authorization header requires '{name}' parameter."))
        .collect();
        if !missing.is_empty() {
            return Err(incomplete(missing.join(" ")));
        }
        let (credential, signed_headers, signature) =
            (credential.unwrap_or(""), signed_headers.unwrap_or(""), signature.unwrap_or(""));

        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, scope_date, region, service, terminator] = scope[..] else {
            return Err(incomplete(format!(
                "Credential should be <access key id>/<YYYYMMDD>/<region>/{SERVICE}/{TERMINATOR}; \
                 got {}",
                shown(credential)
            )));
        };
        if access_key_id.is_empty() {
            return Err(incomplete("Credential has an empty access key id"));
        }
        if scope_date.len() != 8 || !scope_date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(incomplete(format!(
                "the date in Credential must be YYYYMMDD; got {}",
                shown(scope_date)
            )));
        }

        let mut names: Vec<String> = Vec::new();
        for name in signed_headers.split(';') {
            let valid = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b)
                });
            if !valid {
                return Err(incomplete(format!(
                    "SignedHeaders must be lowercase header names separated by ';'; got {}",
                    shown(signed_headers)
                )));
            }
            if names.iter().any(|n| n == name) {
                return Err(incomplete(format!("SignedHeaders lists '{name}' twice")));
            }
            names.push(name.to_owned());
        }
        if names.len() > MAX_SIGNED_HEADERS {
            return Err(incomplete(format!(
                "SignedHeaders lists {} headers; at most {MAX_SIGNED_HEADERS} are accepted",
                names.len()
            )));
        }
        if !names.iter().any(|n| n == "host") {
            return Err(incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization."));
        }
        // The target names the operation: unsigned, a captured PutRecord could be replayed as
        // any other operation with the same body (a DeleteDeliveryStream, say).
        if !names.iter().any(|n| n == "x-amz-target") {
            return Err(incomplete(
                "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization: it names the \
                 operation. Every AWS SDK and the aws CLI sign it; sign it too",
            ));
        }
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(incomplete(format!(
                "Signature must be 64 hexadecimal characters; got {}",
                shown(signature)
            )));
        }
        Ok(Self {
            access_key_id,
            scope_date,
            region,
            service,
            terminator,
            signed_headers: names,
            signature,
        })
    }
}

/// The request's date: `X-Amz-Date` (ISO-8601 basic), else `Date` (RFC 1123).
pub(super) struct RequestDate {
    pub(super) time: DateTime<Utc>,
}

impl RequestDate {
    pub(super) fn from_headers(headers: &HeaderMap) -> Result<Self, AuthError> {
        let one = |name: &str| -> Result<Option<&str>, AuthError> {
            let mut values = headers.get_all(name).iter();
            let Some(value) = values.next() else { return Ok(None) };
            if values.next().is_some() {
                return Err(incomplete(format!("send exactly one {name} header")));
            }
            value.to_str().map(Some).map_err(|_| incomplete(format!("{name} is not ASCII")))
        };
        if let Some(value) = one("x-amz-date")? {
            let time = NaiveDateTime::parse_from_str(value, AMZ_DATE_FORMAT)
                .ok()
                .filter(|_| value.len() == 16)
                .ok_or_else(|| {
                    incomplete(format!(
                        "X-Amz-Date must be in ISO-8601 basic format, e.g. 20261122T032422Z; got {}",
                        shown(value)
                    ))
                })?;
            return Ok(Self { time: time.and_utc() });
        }
        if let Some(value) = one("date")? {
            let time = DateTime::parse_from_rfc2822(value).map_err(|_| {
                incomplete(format!(
                    "Date must be an HTTP date, e.g. Sun, 22 Nov 2026 03:24:22 GMT; got {}",
                    shown(value)
                ))
            })?;
            return Ok(Self { time: time.with_timezone(&Utc) });
        }
        Err(incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ))
    }
}
