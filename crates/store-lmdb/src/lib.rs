//! Every store of store-api on lmdb (being written).
