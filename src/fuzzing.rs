//! Entry points for the fuzz targets in fuzz/ (cargo fuzz): each feeds untrusted bytes to one
//! parser and must return, whatever the bytes, without a panic. Not an API.
