//! Cache limit and collection (filled in below).
