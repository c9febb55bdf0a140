//! File readers (placeholder: being written).
