//! Contiguous f32 views of candle's CPU storage, for the CPU side of Lathe's custom ops
//! (depthwise, 1×1 convolution, batch norm, AdamW): the op's name goes into the error.

use candle_core::{CpuStorage, Layout, Result, bail};

/// The f32 values `l` covers in `s`, or an error naming `op` and `what` when `s` holds another
/// dtype or `l` is not contiguous.
pub(crate) fn f32_view<'a>(
    op: &str,
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("{op}: {what} must be f32 on the CPU")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("{op}: {what} must be contiguous"),
    }
}

/// As [`f32_view`], mutable (for in-place ops).
pub(crate) fn f32_view_mut<'a>(
    op: &str,
    s: &'a mut CpuStorage,
    l: &Layout,
    what: &str,
) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("{op}: {what} must be f32 on the CPU")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&mut v[a..b]),
        None => bail!("{op}: {what} must be contiguous"),
    }
}
