//! From a Docker container config to an OCI runtime spec.
