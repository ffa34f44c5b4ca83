//! Every store of store-api on redb (being written).
