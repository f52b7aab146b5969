//! Where the database is, and opening a connection to it.
//!
//! Settings come from the places users already keep them, in this order: the
//! `--database-url` flag, `[postgres]` in config.toml, `DATABASE_URL`, and the
//! libpq variables. The first of the first three that names a server is the
//! connection; whatever it leaves out (a password, say) is filled from the
//! libpq variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
//! `PGSSLMODE`, `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT`), exactly as `psql` does,
//! and then from libpq's defaults (localhost:5432, the OS user, a database
//! named like the user). Two URLs are never mixed, so a password meant for one
//! server is never sent to another.
//!
//! TLS follows libpq's `sslmode`: `disable` never, `allow`/`prefer` when the
//! server offers it, `require` always without checking the certificate,
//! `verify-ca` checking it against the trusted roots (`PGSSLROOTCERT`, else
//! `~/.postgresql/root.crt`, else the system's), `verify-full` also checking
//! the host name. A connect timeout (5 s unless set) makes an unreachable
//! server an error within seconds that names the host and port.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::Client;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode};

use super::{PgConfig, PgError};

/// Seconds to wait for a TCP connection when nothing else is configured.
const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 5;

/// How much TLS a connection asks for (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP only.
    Disable,
    /// TLS if the server offers it, unverified (libpq's `allow` and `prefer`).
    Prefer,
    /// TLS or nothing; the certificate is not checked.
    Require,
    /// TLS with the certificate checked against trusted roots.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

impl FromStr for TlsMode {
    type Err = String;

    fn from_str(text: &str) -> Result<TlsMode, String> {
        Ok(match text {
            "disable" => TlsMode::Disable,
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => {
                return Err(format!(
                "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ))
            }
        })
    }
}

/// Everything needed to open a connection, with where it came from.
#[derive(Clone)]
pub struct ConnectionSettings {
    config: tokio_postgres::Config,
    tls: TlsMode,
    root_cert: Option<PathBuf>,
    source: String,
}

impl fmt::Debug for ConnectionSettings {
    // By hand, so that a password never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSettings")
            .field("target", &self.target())
            .field("tls", &self.tls)
            .field("source", &self.source)
            .finish()
    }
}

impl ConnectionSettings {
    /// Resolve the settings from the flag, the `[postgres]` section and the
    /// environment (read through `env`, so tests can pass their own).
    pub fn resolve(
        flag_url: Option<&str>,
        section: &PgConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConnectionSettings, PgError> {
        let env = |key: &str| env(key).filter(|v| !v.is_empty());
        let mut root_cert = None;
        let (mut config, mut tls, source) = if let Some(url) = flag_url {
            let (config, tls) = parse_url(url, "--database-url", &mut root_cert)?;
            (config, tls, "--database-url".to_string())
        } else if section.names_a_server() {
            let source = "[postgres] in the config file";
            let (mut config, mut tls) = match &section.url {
                Some(url) => parse_url(url, source, &mut root_cert)?,
                None => (tokio_postgres::Config::new(), None),
            };
            if let Some(host) = &section.host {
                config.host(host);
            }
            if let Some(port) = section.port {
                config.port(port);
            }
            if let Some(user) = &section.user {
                config.user(user);
            }
            if let Some(password) = &section.password {
                config.password(password);
            }
            if let Some(dbname) = &section.dbname {
                config.dbname(dbname);
            }
            if let Some(mode) = &section.sslmode {
                tls = Some(
                    mode.parse()
                        .map_err(|problem| settings_error(source, problem))?,
                );
            }
            (config, tls, source.to_string())
        } else if let Some(url) = env("DATABASE_URL") {
            let (config, tls) = parse_url(&url, "DATABASE_URL", &mut root_cert)?;
            (config, tls, "DATABASE_URL".to_string())
        } else {
            (
                tokio_postgres::Config::new(),
                None,
                "the PG* environment variables and libpq defaults".to_string(),
            )
        };

        // Gaps are filled from the libpq variables, then libpq's defaults.
        let pg_source = "the PG* environment variables";
        if config.get_hosts().is_empty() {
            for host in env("PGHOST")
                .unwrap_or_else(|| "localhost".into())
                .split(',')
            {
                config.host(host);
            }
        }
        if config.get_ports().is_empty() {
            let port = match env("PGPORT") {
                Some(text) => text.parse().map_err(|_| {
                    settings_error(pg_source, format!("PGPORT `{text}` is not a port number"))
                })?,
                None => 5432,
            };
            config.port(port);
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .or_else(|| env("LOGNAME"))
                .unwrap_or_else(|| "postgres".into());
            config.user(&user);
        }
        if config.get_password().is_none() {
            if let Some(password) = env("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_dbname().is_none() {
            let dbname = env("PGDATABASE")
                .or_else(|| config.get_user().map(str::to_string))
                .unwrap_or_default();
            config.dbname(&dbname);
        }
        if tls.is_none() {
            if let Some(mode) = env("PGSSLMODE") {
                tls = Some(mode.parse().map_err(|p| settings_error(pg_source, p))?);
            }
        }
        if root_cert.is_none() {
            root_cert = env("PGSSLROOTCERT").map(PathBuf::from);
        }
        // A timeout written in the URL wins, then the config's, then libpq's variable.
        let timeout_secs = match (
            config.get_connect_timeout(),
            section.connect_timeout_secs,
            env("PGCONNECT_TIMEOUT"),
        ) {
            (Some(in_url), _, _) => in_url.as_secs(),
            (None, Some(secs), _) => secs,
            (None, None, Some(text)) => text.parse().map_err(|_| {
                settings_error(
                    pg_source,
                    format!("PGCONNECT_TIMEOUT `{text}` is not a number of seconds"),
                )
            })?,
            (None, None, None) => DEFAULT_CONNECT_TIMEOUT_SECS,
        };
        config.connect_timeout(Duration::from_secs(timeout_secs.max(1)));
        config.application_name("recsys");
        let tls = tls.unwrap_or(TlsMode::Prefer);
        config.ssl_mode(match tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        Ok(ConnectionSettings {
            config,
            tls,
            root_cert,
            source,
        })
    }

    /// `user@host:port/database`, for messages (never the password).
    pub fn target(&self) -> String {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = self.config.get_ports().iter().map(u16::to_string).collect();
        format!(
            "{}@{}:{}/{}",
            self.config.get_user().unwrap_or_default(),
            hosts.join(","),
            ports.join(","),
            self.config.get_dbname().unwrap_or_default()
        )
    }

    /// The TLS mode in force.
    pub fn tls(&self) -> TlsMode {
        self.tls
    }

    /// Where the settings came from, e.g. `DATABASE_URL`.
    pub fn source(&self) -> &str {
        &self.source
    }
}

fn settings_error(source: &str, problem: impl Into<String>) -> PgError {
    PgError::Settings {
        source_name: source.to_string(),
        problem: problem.into(),
    }
}

/// Parse a `postgres://` URL (or a `key=value` string).
///
/// The driver knows only `disable`, `prefer` and `require` for `sslmode` and no
/// `sslrootcert`, so those two are taken out of a URL's query first and handled here.
fn parse_url(
    url: &str,
    source: &str,
    root_cert: &mut Option<PathBuf>,
) -> Result<(tokio_postgres::Config, Option<TlsMode>), PgError> {
    let mut tls = None;
    let mut rest = url.to_string();
    if let Some((base, query)) = url
        .split_once('?')
        .filter(|_| url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    let mode = percent_decode(value);
                    tls = Some(mode.parse().map_err(|p| settings_error(source, p))?);
                }
                "sslrootcert" => *root_cert = Some(PathBuf::from(percent_decode(value))),
                _ => kept.push(pair),
            }
        }
        rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
    }
    let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| {
        // The driver's message names the bad part; the URL itself may hold a password.
        settings_error(source, format!("not a usable connection URL: {e}"))
    })?;
    if !url_names_a_port(&rest) {
        // The driver fills in 5432 for a URL without a port; libpq would let
        // PGPORT fill that gap, so start from no port at all.
        config = rebuild_without_ports(&config);
    }
    if tls.is_none() && config.get_ssl_mode() != SslMode::Prefer {
        tls = Some(match config.get_ssl_mode() {
            SslMode::Disable => TlsMode::Disable,
            _ => TlsMode::Require,
        });
    }
    Ok((config, tls))
}

/// True when a `postgres://` URL writes a port after (one of) its hosts.
/// Key-value strings are taken as they are.
fn url_names_a_port(url: &str) -> bool {
    let Some(after_scheme) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return true;
    };
    let authority = after_scheme.split(['/', '?']).next().unwrap_or_default();
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    hosts.split(',').any(|host| {
        // `[::1]:5433`: the port follows the bracket.
        let after_address = host.rsplit_once(']').map_or(host, |(_, rest)| rest);
        after_address.contains(':')
    })
}

/// `config` with the same settings but no ports (the driver has no way to unset them).
fn rebuild_without_ports(config: &tokio_postgres::Config) -> tokio_postgres::Config {
    let mut fresh = tokio_postgres::Config::new();
    for host in config.get_hosts() {
        match host {
            Host::Tcp(name) => fresh.host(name),
            Host::Unix(path) => fresh.host_path(path),
        };
    }
    if let Some(user) = config.get_user() {
        fresh.user(user);
    }
    if let Some(password) = config.get_password() {
        fresh.password(password);
    }
    if let Some(dbname) = config.get_dbname() {
        fresh.dbname(dbname);
    }
    if let Some(options) = config.get_options() {
        fresh.options(options);
    }
    if let Some(name) = config.get_application_name() {
        fresh.application_name(name);
    }
    for address in config.get_hostaddrs() {
        fresh.hostaddr(*address);
    }
    if let Some(timeout) = config.get_connect_timeout() {
        fresh.connect_timeout(*timeout);
    }
    if let Some(timeout) = config.get_tcp_user_timeout() {
        fresh.tcp_user_timeout(*timeout);
    }
    fresh
        .ssl_mode(config.get_ssl_mode())
        .keepalives(config.get_keepalives())
        .keepalives_idle(config.get_keepalives_idle())
        .target_session_attrs(config.get_target_session_attrs())
        .channel_binding(config.get_channel_binding())
        .load_balance_hosts(config.get_load_balance_hosts());
    if let Some(interval) = config.get_keepalives_interval() {
        fresh.keepalives_interval(interval);
    }
    if let Some(retries) = config.get_keepalives_retries() {
        fresh.keepalives_retries(retries);
    }
    fresh
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Open a connection with `settings`.
///
/// The login runs on a helper thread and is given up on after the connect
/// timeout (see `login_deadline`).
pub fn connect(settings: &ConnectionSettings) -> Result<Client, PgError> {
    let tls = connector(settings)?;
    let config = postgres::Config::from(settings.config.clone());
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = match tls {
            None => config.connect(postgres::NoTls),
            Some(tls) => config.connect(tls),
        };
        // The receiver is gone only if it gave up waiting; nothing to do then.
        let _ = send.send(result);
    });
    match receive.recv_timeout(settings.login_deadline()) {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(settings.connect_error(error)),
        Err(_) => Err(settings.login_timeout_error()),
    }
}

/// Open an asynchronous connection (for streaming a COPY without a
/// per-message round trip through the blocking client); its connection task
/// is spawned on the current Tokio runtime.
pub(super) async fn connect_async(
    settings: &ConnectionSettings,
) -> Result<tokio_postgres::Client, PgError> {
    let tls = connector(settings)?;
    let login = async {
        match tls {
            None => {
                let (client, connection) = settings.config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                Ok(client)
            }
            Some(tls) => {
                let (client, connection) = settings.config.connect(tls).await?;
                tokio::spawn(connection);
                Ok(client)
            }
        }
    };
    match tokio::time::timeout(settings.login_deadline(), login).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(settings.connect_error(error)),
        Err(_) => Err(settings.login_timeout_error()),
    }
}

fn connector(
    settings: &ConnectionSettings,
) -> Result<Option<tokio_postgres_rustls::MakeRustlsConnect>, PgError> {
    match settings.tls {
        TlsMode::Disable => Ok(None),
        mode => tls_connector(mode, settings.root_cert.as_deref())
            .map(Some)
            .map_err(|p| settings_error(&settings.source, p)),
    }
}

impl ConnectionSettings {
    /// How long the whole login may take: the connect timeout for each host,
    /// as libpq's `connect_timeout` does. The driver's own timeout covers only
    /// the TCP connection; something that accepts it and then never answers
    /// would otherwise hang the login forever.
    fn login_deadline(&self) -> Duration {
        let per_host = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS));
        per_host * self.config.get_hosts().len().max(1) as u32 + Duration::from_millis(500)
    }

    fn connect_error(&self, error: tokio_postgres::Error) -> PgError {
        let reason = super::sql_error(error).to_string();
        PgError::Connect {
            target: self.target(),
            source_name: self.source.clone(),
            advice: advice_for(&reason),
            reason,
        }
    }

    fn login_timeout_error(&self) -> PgError {
        PgError::Connect {
            target: self.target(),
            source_name: self.source.clone(),
            reason: format!(
                "the server did not complete the login within {} s",
                (self.login_deadline() - Duration::from_millis(500)).as_secs()
            ),
            advice: "; is a PostgreSQL server listening there?".to_string(),
        }
    }
}

/// A hint for the errors users meet most, appended to the connection error.
fn advice_for(reason: &str) -> String {
    let all = reason.to_lowercase();
    if all.contains("refused") || all.contains("timed out") || all.contains("timeout") {
        "; is the server running and reachable there?".to_string()
    } else if all.contains("password") {
        "; check PGPASSWORD or the password in the URL".to_string()
    } else if all.contains("certificate") || all.contains("tls") {
        "; check sslmode and PGSSLROOTCERT".to_string()
    } else {
        String::new()
    }
}

fn provider() -> Arc<CryptoProvider> {
    // Picked explicitly: several rustls providers are compiled in through
    // other dependencies, and rustls will not guess between them.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_connector(
    mode: TlsMode,
    root_cert: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("setting up TLS: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        // libpq does not check the certificate in these modes either; the
        // connection is encrypted but not authenticated.
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => {
            Arc::new(AcceptAnyCertificate(provider))
        }
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let roots = Arc::new(trusted_roots(root_cert)?);
            let webpki =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| format!("setting up certificate checks: {e}"))?;
            if mode == TlsMode::VerifyCa {
                Arc::new(IgnoreHostName(webpki))
            } else {
                webpki
            }
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The roots a server certificate is checked against: `root_cert` (or libpq's
/// default `~/.postgresql/root.crt`) if there is one, else the system's.
fn trusted_roots(root_cert: Option<&Path>) -> Result<RootCertStore, String> {
    let default_file = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".postgresql/root.crt"))
        .filter(|p| p.is_file());
    let mut roots = RootCertStore::empty();
    match root_cert.map(Path::to_path_buf).or(default_file) {
        Some(file) if file.as_os_str() != "system" => {
            let certs = CertificateDer::pem_file_iter(&file)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("reading root certificates from {}: {e}", file.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("{} holds no usable certificate", file.display()));
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "no trusted root certificates found; set PGSSLROOTCERT to the server's CA file"
                        .to_string(),
                );
            }
        }
    }
    Ok(roots)
}

/// Accepts any server certificate but still checks the handshake signatures,
/// as libpq does for `sslmode=require`.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root, the name need not match.
#[derive(Debug)]
struct IgnoreHostName(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for IgnoreHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve(
        flag: Option<&str>,
        section: &PgConfig,
        vars: &[(&str, &str)],
    ) -> Result<ConnectionSettings, PgError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ConnectionSettings::resolve(flag, section, &|k| vars.get(k).cloned())
    }

    #[test]
    fn the_flag_beats_the_config_which_beats_database_url() {
        let section = PgConfig {
            host: Some("cfg-host".into()),
            dbname: Some("shop".into()),
            ..PgConfig::default()
        };
        let env = [("DATABASE_URL", "postgres://envuser@env-host:6000/envdb")];
        let s = resolve(
            Some("postgres://flaguser@flag-host:7000/flagdb"),
            &section,
            &env,
        )
        .unwrap();
        assert_eq!(s.target(), "flaguser@flag-host:7000/flagdb");
        assert_eq!(s.source(), "--database-url");
        let s = resolve(None, &section, &[("USER", "me"), env[0]]).unwrap();
        assert_eq!(s.target(), "me@cfg-host:5432/shop");
        let s = resolve(None, &PgConfig::default(), &env).unwrap();
        assert_eq!(s.target(), "envuser@env-host:6000/envdb");
        assert_eq!(s.source(), "DATABASE_URL");
    }

    #[test]
    fn libpq_variables_fill_what_the_url_leaves_out() {
        let env = [
            ("PGHOST", "pg-host"),
            ("PGPORT", "6543"),
            ("PGUSER", "pguser"),
            ("PGPASSWORD", "secret"),
            ("PGDATABASE", "pgdb"),
        ];
        let s = resolve(None, &PgConfig::default(), &env).unwrap();
        assert_eq!(s.target(), "pguser@pg-host:6543/pgdb");
        assert_eq!(s.config.get_password(), Some(&b"secret"[..]));
        let s = resolve(
            Some("postgres://other@url-host/urldb"),
            &PgConfig::default(),
            &env,
        )
        .unwrap();
        assert_eq!(s.target(), "other@url-host:6543/urldb");
        // A connection-only section (just a timeout) does not hide DATABASE_URL.
        let timeout_only = PgConfig {
            connect_timeout_secs: Some(2),
            ..PgConfig::default()
        };
        let s = resolve(None, &timeout_only, &[("DATABASE_URL", "postgres://u@h/d")]).unwrap();
        assert_eq!(s.target(), "u@h:5432/d");
        assert_eq!(
            s.config.get_connect_timeout(),
            Some(&Duration::from_secs(2))
        );
    }

    #[test]
    fn a_port_is_recognised_in_the_url() {
        assert!(url_names_a_port("postgres://u:p@h:5433/d"));
        assert!(url_names_a_port("postgres://[::1]:5433/d"));
        assert!(url_names_a_port("postgres://a,b:6000/d"));
        assert!(!url_names_a_port("postgres://u:p@h/d?x=1"));
        assert!(!url_names_a_port("postgresql://[::1]/d"));
        assert!(url_names_a_port("host=h port=5"));
    }

    #[test]
    fn defaults_are_libpqs() {
        let s = resolve(None, &PgConfig::default(), &[("USER", "alice")]).unwrap();
        assert_eq!(s.target(), "alice@localhost:5432/alice");
        assert_eq!(s.tls(), TlsMode::Prefer);
        assert_eq!(
            s.config.get_connect_timeout(),
            Some(&Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS))
        );
    }

    #[test]
    fn sslmode_comes_from_the_url_or_pgsslmode_including_the_verify_modes() {
        let s = resolve(
            Some("postgres://u@h/d?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=3"),
            &PgConfig::default(),
            &[("PGSSLMODE", "disable")],
        )
        .unwrap();
        assert_eq!(s.tls(), TlsMode::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some(Path::new("/tmp/ca.pem")));
        assert_eq!(
            s.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        let s = resolve(None, &PgConfig::default(), &[("PGSSLMODE", "require")]).unwrap();
        assert_eq!(s.tls(), TlsMode::Require);
        let s = resolve(
            Some("postgres://u@h/d?sslmode=disable"),
            &PgConfig::default(),
            &[],
        )
        .unwrap();
        assert_eq!(s.tls(), TlsMode::Disable);
        let err = resolve(None, &PgConfig::default(), &[("PGSSLMODE", "sometimes")]).unwrap_err();
        assert!(err.to_string().contains("sslmode `sometimes`"), "{err}");
    }

    #[test]
    fn bad_settings_name_their_source_and_never_echo_the_password() {
        let err = resolve(
            Some("postgres://u:hunter2@h:notaport/d"),
            &PgConfig::default(),
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--database-url"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let err = resolve(None, &PgConfig::default(), &[("PGPORT", "five")]).unwrap_err();
        assert!(err.to_string().contains("PGPORT `five`"), "{err}");
        let s = resolve(Some("postgres://u:hunter2@h/d"), &PgConfig::default(), &[]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
