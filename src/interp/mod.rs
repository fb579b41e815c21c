//! The reference interpreter (see issue 3).
