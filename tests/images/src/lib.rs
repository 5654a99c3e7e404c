//! Harness for the image end-to-end suite (being written).
