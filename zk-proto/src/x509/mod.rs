//! X.509 material read the same way by the server and the client: keystores and
//! truststores as Apache reads them ([`store`]: JKS, PKCS12, PEM, the type inferred from
//! the file name as Apache infers it), and the DER of certificates ([`der`]: fields, names
//! printed as Java prints them), and the checks of X.509 version 1 certificates that
//! Java accepts and webpki refuses ([`v1`], for the server's client certificates and the
//! client's server certificates alike).

pub mod der;
pub mod store;
pub mod v1;
