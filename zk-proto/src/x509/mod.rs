//! X.509 material read the same way by the server and the client: keystores and
//! truststores as Apache reads them ([`store`]: JKS, PKCS12, PEM, the type inferred from
//! the file name as Apache infers it), and the DER of certificates ([`der`]: fields, names
//! printed as Java prints them).

pub mod der;
pub mod store;
