//! Every store of store-api on sled (being written).
