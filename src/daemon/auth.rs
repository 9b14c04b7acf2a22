//! Who is calling: the terminal identity of a connection, and what it may call.
//!
//! On the Unix socket, whoever can open the socket file (its mode, 0660 by default) is the
//! configured local terminal. On TCP, TLS has already checked that the client certificate
//! comes from the configured CA; its common name names the terminal, which must be listed
//! in `[daemon.terminals]` with the methods it may call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tonic::{Request, Status};

use super::config::DaemonConfig;

/// The calling terminal, attached to each request by the transport's interceptor.
#[derive(Clone, Debug)]
pub struct Terminal {
    name: String,
    methods: Arc<BTreeSet<String>>,
}

impl Terminal {
    /// The terminal of a request (set by the interceptor).
    pub fn of<T>(request: &Request<T>) -> Result<Terminal, Status> {
        request
            .extensions()
            .get::<Terminal>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("no terminal identity"))
    }

    /// Its name (the certificate's common name, or the socket's terminal name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// PERMISSION_DENIED unless the terminal may call `method`.
    pub fn allow(&self, method: &str) -> Result<(), Status> {
        if self.methods.contains(method) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "terminal {:?} may not call {method}",
                self.name
            )))
        }
    }
}

/// The interceptor of the Unix socket: every caller is the configured local terminal.
pub fn unix_interceptor(
    config: &DaemonConfig,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static {
    let terminal = Terminal {
        name: config.socket_terminal.clone(),
        methods: Arc::new(config.socket_methods.iter().cloned().collect()),
    };
    move |mut request: Request<()>| {
        request.extensions_mut().insert(terminal.clone());
        Ok(request)
    }
}

/// The interceptor of the TCP listener: the terminal named by the client certificate's
/// common name, if allowed.
pub fn tls_interceptor(
    config: &DaemonConfig,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static {
    let allowed: Arc<BTreeMap<String, Arc<BTreeSet<String>>>> = Arc::new(
        config
            .terminals
            .iter()
            .map(|(name, t)| (name.clone(), Arc::new(t.methods.iter().cloned().collect())))
            .collect(),
    );
    move |mut request: Request<()>| {
        let certs = request
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let name = common_name(leaf.as_ref())
            .ok_or_else(|| Status::unauthenticated("the client certificate has no common name"))?;
        let methods = allowed.get(&name).cloned().ok_or_else(|| {
            Status::permission_denied(format!("terminal {name:?} is not allowed on this daemon"))
        })?;
        request.extensions_mut().insert(Terminal { name, methods });
        Ok(request)
    }
}

fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}
