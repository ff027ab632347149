//! `hydrant replay`: asks a running server for a replay (`Hydrant_20261208.StartReplay`, signed
//! with SigV4 when AWS credentials are in the environment, as the aws CLI finds them) and shows
//! its progress until it is done.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// Options of `hydrant replay`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  # re-deliver 09:00-10:00 UTC of stream clicks under a new prefix of its bucket
  hydrant replay --stream clicks --from 2026-12-08T09:00:00Z --to 2026-12-08T10:00:00Z \\
      --prefix replay/clicks/

  # the same hour through stream clicks-debug (its transform, format and destination)
  hydrant replay --stream clicks --from 2026-12-08T09:00:00Z --to 2026-12-08T10:00:00Z \\
      --to-stream clicks-debug

Asking again for the same replay (same stream, range and target) finds the first one: a
finished replay writes nothing new, an interrupted one (the server stopped or crashed) goes
on from its checkpoints. With `auth` on, the key (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
needs the action hydrant:StartReplay (and hydrant:DescribeReplay to follow progress).
What can be replayed is what the stream still holds: see hydrant.retention_hours.")]
pub struct ReplayArgs {
    /// The delivery stream whose records are delivered again.
    #[arg(long)]
    pub stream: String,
    /// Start of the range of arrival times (included): RFC 3339 (2026-12-08T09:00:00Z) or
    /// epoch seconds.
    #[arg(long)]
    pub from: String,
    /// End of the range (included), in the past: RFC 3339 or epoch seconds.
    #[arg(long)]
    pub to: String,
    /// Deliver to the stream's own S3 destination under this new prefix.
    #[arg(long, required_unless_present = "to_stream", conflicts_with = "to_stream")]
    pub prefix: Option<String>,
    /// Deliver through another delivery stream (its processing, format and destination).
    #[arg(long)]
    pub to_stream: Option<String>,
    /// The server's API endpoint (plain HTTP).
    #[arg(long, env = "HYDRANT_ENDPOINT", default_value = "http://127.0.0.1:4573")]
    pub endpoint: String,
    /// Start the replay and return without waiting for it.
    #[arg(long)]
    pub no_wait: bool,
}

/// Runs `hydrant replay`: 0 once the replay is done, 1 if it failed.
pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.endpoint)?;
    let mut request = json!({
        "DeliveryStreamName": args.stream,
        "From": parse_time(&args.from).context("--from")?,
        "To": parse_time(&args.to).context("--to")?,
    });
    match (&args.prefix, &args.to_stream) {
        (Some(prefix), _) => request["Prefix"] = json!(prefix),
        (None, Some(stream)) => request["TargetDeliveryStreamName"] = json!(stream),
        (None, None) => bail!("give --prefix or --to-stream"),
    }
    let started = client.call("StartReplay", &request).await?;
    let id = started["ReplayId"].as_str().context("the server answered no ReplayId")?.to_string();
    eprintln!("replay {id} of stream {}", args.stream);
    if args.no_wait {
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    let tty = std::io::stderr().is_terminal();
    let mut last = String::new();
    loop {
        let answer = client.call("DescribeReplay", &json!({ "ReplayId": id })).await?;
        let replay = &answer["Replay"];
        let line = progress_line(replay);
        if line != last {
            if tty {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
            let _ = std::io::stderr().flush();
            last = line;
        }
        match replay["Status"].as_str() {
            Some("DONE") => {
                if tty {
                    eprintln!();
                }
                println!("{id}");
                return Ok(ExitCode::SUCCESS);
            }
            Some("FAILED") => {
                if tty {
                    eprintln!();
                }
                eprintln!("replay {id} failed: {}", replay["Error"].as_str().unwrap_or("?"));
                return Ok(ExitCode::FAILURE);
            }
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

fn progress_line(replay: &Value) -> String {
    let percent = replay["Progress"].as_f64().unwrap_or(0.0) * 100.0;
    format!(
        "{:>5.1}%  {} records, {:.1} MB, shards {}/{}  {}",
        percent,
        replay["Records"].as_u64().unwrap_or(0),
        replay["Bytes"].as_u64().unwrap_or(0) as f64 / 1e6,
        replay["ShardsDone"].as_u64().unwrap_or(0),
        replay["ShardsTotal"].as_u64().unwrap_or(0),
        replay["Status"].as_str().unwrap_or("?"),
    )
}

/// Epoch seconds from RFC 3339 or a number of seconds.
fn parse_time(text: &str) -> anyhow::Result<f64> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok(seconds);
    }
    let time = chrono::DateTime::parse_from_rfc3339(text).with_context(|| {
        format!("{text:?} is not a time: write RFC 3339 (2026-12-08T09:00:00Z) or epoch seconds")
    })?;
    Ok(time.timestamp_millis() as f64 / 1000.0)
}

/// Calls Hydrant's operations, signed when credentials are in the environment.
struct Client {
    http: reqwest::Client,
    endpoint: String,
    host: String,
    credentials: Option<(String, String)>,
    region: String,
}

impl Client {
    fn new(endpoint: &str) -> anyhow::Result<Self> {
        let url =
            reqwest::Url::parse(endpoint).with_context(|| format!("--endpoint {endpoint}"))?;
        if url.scheme() != "http" {
            bail!("--endpoint {endpoint}: hydrant replay speaks plain HTTP; use the server's http:// listener (e.g. admin_listen or a loopback listen)");
        }
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let credentials = env("AWS_ACCESS_KEY_ID").zip(env("AWS_SECRET_ACCESS_KEY"));
        let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
        Ok(Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_string() + "/",
            host,
            credentials,
            region: region.unwrap_or_else(|| "us-east-1".into()),
        })
    }

    async fn call(&self, operation: &str, body: &Value) -> anyhow::Result<Value> {
        let body = body.to_string();
        let target = format!("Hydrant_20261208.{operation}");
        let mut headers = vec![
            ("host".to_string(), self.host.clone()),
            ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
            ("x-amz-target".to_string(), target),
        ];
        if let Some((key, secret)) = &self.credentials {
            headers.extend(self.sign(key, secret, &headers, body.as_bytes())?);
        }
        let mut request = self.http.post(&self.endpoint).body(body);
        for (name, value) in &headers {
            if name != "host" {
                request = request.header(name, value);
            }
        }
        let response = (request.send().await)
            .with_context(|| format!("cannot reach Hydrant at {}", self.endpoint))?;
        let status = response.status();
        let bytes = response.bytes().await.context("reading the server's answer")?;
        let answer: Value =
            serde_json::from_slice(&bytes).context("the server's answer is not JSON")?;
        if !status.is_success() {
            bail!(
                "{operation}: {} ({})",
                answer["message"].as_str().unwrap_or("?"),
                answer["__type"].as_str().unwrap_or("?")
            );
        }
        Ok(answer)
    }

    fn sign(
        &self,
        key: &str,
        secret: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> anyhow::Result<Vec<(String, String)>> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let identity =
            aws_credential_types::Credentials::new(key, secret, None, None, "environment").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("hydrant")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .context("signing the request")?
            .into();
        let signable = SignableRequest::new(
            "POST",
            "/",
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .context("signing the request")?;
        let (instructions, _) =
            sign(signable, &params).context("signing the request")?.into_parts();
        Ok(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_epoch_seconds() {
        assert_eq!(parse_time("1765184400").unwrap(), 1765184400.0);
        assert_eq!(parse_time("2025-12-08T09:00:00Z").unwrap(), 1765184400.0);
        assert_eq!(parse_time("2025-12-08T10:00:00+01:00").unwrap(), 1765184400.0);
        let e = parse_time("yesterday").unwrap_err().to_string();
        assert!(e.contains("RFC 3339"), "{e}");
    }
}
