//! Every store of store-api on sqlite (being written).
