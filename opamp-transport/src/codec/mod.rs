//! Pure, synchronous encoding and decoding: no IO, every size bounded before allocation.
