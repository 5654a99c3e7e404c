//! (suite below)
