//! Metal (Apple GPU) side of the depthwise-convolution ops: compiles `depthwise.metal` at run
//! time once per device and dispatches its kernels on candle's command encoder — forward (with
//! optional bias and ReLU6), the input gradient, and the kernel gradient (partial sums per chunk
//! of pixels, then one sum per tap). float and half tensors.
//!
//! Built only with `--features metal` on macOS; it cannot be compiled or run on the Linux
//! development machines. The shader's arithmetic is checked on the CPU by
//! `engine/tests/metal_shader.rs`; this file's Rust is type-checked with
//! `scripts/check-metal.sh` (`cargo check` for aarch64-apple-darwin with `--features metal`).

use super::depthwise::DwGeometry;
use candle_core::backend::BackendStorage;
use candle_core::{DType, Layout, MetalDevice, MetalStorage, Result, Shape, bail};
use candle_metal_kernels::metal::ComputePipeline;
use objc2_metal::MTLSize;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

const SOURCE: &str = include_str!("depthwise.metal");

/// Chunks of (image, pixel) pairs per kernel tap in the kernel gradient's first pass.
const CHUNKS: usize = 64;

/// `DwParams` in depthwise.metal (13 × i32, in this order).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct DwParams {
    n: i32,
    c: i32,
    h: i32,
    w: i32,
    kh: i32,
    kw: i32,
    ho: i32,
    wo: i32,
    s: i32,
    p: i32,
    has_bias: i32,
    relu6: i32,
    chunks: i32,
}

fn int(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| candle_core::Error::Msg("depthwise conv: size too large".into()))
}

impl DwParams {
    #[allow(clippy::too_many_arguments)]
    fn new(
        g: DwGeometry,
        (n, c, h, w): (usize, usize, usize, usize),
        (kh, kw): (usize, usize),
        (ho, wo): (usize, usize),
        has_bias: bool,
        relu6: bool,
    ) -> Result<Self> {
        Ok(Self {
            n: int(n)?,
            c: int(c)?,
            h: int(h)?,
            w: int(w)?,
            kh: int(kh)?,
            kw: int(kw)?,
            ho: int(ho)?,
            wo: int(wo)?,
            s: int(g.stride)?,
            p: int(g.padding)?,
            has_bias: has_bias as i32,
            relu6: relu6 as i32,
            chunks: CHUNKS as i32,
        })
    }
}

/// The pipeline of kernel `name` on `device`, compiling the library on first use.
fn pipeline(device: &MetalDevice, name: &str) -> Result<ComputePipeline> {
    static CACHE: OnceLock<Mutex<HashMap<String, ComputePipeline>>> = OnceLock::new();
    let key = format!("{:?}/{name}", device.id());
    let mut cache = CACHE
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .map_err(|_| {
            candle_core::Error::Msg("depthwise conv: Metal pipeline cache poisoned".into())
        })?;
    if let Some(p) = cache.get(&key) {
        return Ok(p.clone());
    }
    let err = |e: candle_metal_kernels::MetalKernelError| {
        candle_core::Error::Msg(format!("depthwise conv: Metal kernel `{name}`: {e}"))
    };
    let library = device
        .metal_device()
        .new_library_with_source(SOURCE, None)
        .map_err(err)?;
    let function = library.get_function(name, None).map_err(err)?;
    let p = device
        .metal_device()
        .new_compute_pipeline_state_with_function(&function)
        .map_err(err)?;
    cache.insert(key, p.clone());
    Ok(p)
}

fn suffix(dtype: DType) -> Result<&'static str> {
    Ok(match dtype {
        DType::F32 => "f32",
        DType::F16 => "f16",
        _ => bail!("depthwise conv on Metal: f32 or f16 tensors only, not {dtype:?}"),
    })
}

/// Byte offset of a contiguous tensor in its buffer.
fn offset(s: &MetalStorage, l: &Layout, what: &str) -> Result<usize> {
    match l.contiguous_offsets() {
        Some((a, _)) => Ok(a * s.dtype().size_in_bytes()),
        None => bail!("depthwise conv: {what} must be contiguous"),
    }
}

/// One dispatch of `name` over `threads` threads: inputs at buffer indices 0.., then the
/// output, then the parameters.
fn dispatch(
    device: &MetalDevice,
    name: &str,
    inputs: &[(&MetalStorage, &Layout, &str)],
    output: &candle_metal_kernels::metal::Buffer,
    params: &DwParams,
    threads: usize,
) -> Result<()> {
    let pipeline = pipeline(device, name)?;
    let width = pipeline.max_total_threads_per_threadgroup().clamp(1, 256);
    let encoder = device.command_encoder()?;
    let enc: &candle_metal_kernels::metal::ComputeCommandEncoder = encoder.as_ref();
    enc.set_compute_pipeline_state(&pipeline);
    for (i, (s, l, what)) in inputs.iter().enumerate() {
        enc.set_input_buffer(i, Some(s.buffer()), offset(s, l, what)?);
    }
    enc.set_output_buffer(inputs.len(), Some(output), 0);
    enc.set_bytes(inputs.len() + 1, params);
    enc.dispatch_threads(
        MTLSize {
            width: threads.max(1),
            height: 1,
            depth: 1,
        },
        MTLSize {
            width,
            height: 1,
            depth: 1,
        },
    );
    Ok(())
}

fn dims(
    g: DwGeometry,
    x: &Layout,
    k: &Layout,
) -> Result<((usize, usize, usize, usize), (usize, usize), (usize, usize))> {
    let (n, c, h, w) = x.shape().dims4()?;
    let (kc, one, kh, kw) = k.shape().dims4()?;
    if kc != c || one != 1 {
        bail!(
            "depthwise conv: kernel {:?} does not fit input {:?}",
            k.shape(),
            x.shape()
        )
    }
    let out = |i: usize, k: usize| -> Result<usize> {
        let padded = i + 2 * g.padding;
        if padded < k || g.stride == 0 {
            bail!("depthwise conv: input {i} is smaller than kernel {k}")
        }
        Ok((padded - k) / g.stride + 1)
    };
    Ok(((n, c, h, w), (kh, kw), (out(h, kh)?, out(w, kw)?)))
}

/// `x [N,C,H,W]` ⊛ `k [C,1,kh,kw]` (+ bias [C]) (+ ReLU6) → `[N,C,Ho,Wo]`.
pub fn forward(
    g: DwGeometry,
    (x, xl): (&MetalStorage, &Layout),
    (k, kl): (&MetalStorage, &Layout),
    bias: Option<(&MetalStorage, &Layout)>,
    relu6: bool,
) -> Result<(MetalStorage, Shape)> {
    let (nchw, khw, howo) = dims(g, xl, kl)?;
    let dtype = x.dtype();
    if k.dtype() != dtype || bias.is_some_and(|(b, _)| b.dtype() != dtype) {
        bail!("depthwise conv: input, kernel and bias must share a dtype")
    }
    let (n, c, _, _) = nchw;
    let count = n * c * howo.0 * howo.1;
    let device = x.device().clone();
    let out = device
        .new_buffer_builder()
        .with_size_for(count, dtype)
        .with_label("depthwise-forward")
        .build()?;
    let params = DwParams::new(g, nchw, khw, howo, bias.is_some(), relu6)?;
    // Without a bias the kernel's bias argument is never read; bind the kernel there.
    let (b, bl) = bias.unwrap_or((k, kl));
    let name = format!("dw_forward_{}", suffix(dtype)?);
    dispatch(
        &device,
        &name,
        &[(x, xl, "input"), (k, kl, "kernel"), (b, bl, "bias")],
        &out,
        &params,
        count,
    )?;
    Ok((
        MetalStorage::new(out, device, count, dtype),
        Shape::from((n, c, howo.0, howo.1)),
    ))
}

/// Gradient of the input from the output's gradient `gy [N,C,Ho,Wo]` and the kernel.
pub fn grad_input(
    g: DwGeometry,
    (h, w): (usize, usize),
    (gy, gl): (&MetalStorage, &Layout),
    (k, kl): (&MetalStorage, &Layout),
) -> Result<(MetalStorage, Shape)> {
    let (n, c, ho, wo) = gl.shape().dims4()?;
    let (_, _, kh, kw) = kl.shape().dims4()?;
    let dtype = gy.dtype();
    let count = n * c * h * w;
    let device = gy.device().clone();
    let out = device
        .new_buffer_builder()
        .with_size_for(count, dtype)
        .with_label("depthwise-grad-input")
        .build()?;
    let params = DwParams::new(g, (n, c, h, w), (kh, kw), (ho, wo), false, false)?;
    let name = format!("dw_grad_input_{}", suffix(dtype)?);
    dispatch(
        &device,
        &name,
        &[(gy, gl, "gradient"), (k, kl, "kernel")],
        &out,
        &params,
        count,
    )?;
    Ok((
        MetalStorage::new(out, device, count, dtype),
        Shape::from((n, c, h, w)),
    ))
}

/// Gradient of the kernel `[C,1,kh,kw]` from the input `x` and the output's gradient.
pub fn grad_kernel(
    g: DwGeometry,
    (kh, kw): (usize, usize),
    (x, xl): (&MetalStorage, &Layout),
    (gy, gl): (&MetalStorage, &Layout),
) -> Result<(MetalStorage, Shape)> {
    let (n, c, h, w) = xl.shape().dims4()?;
    let (_, _, ho, wo) = gl.shape().dims4()?;
    let dtype = x.dtype();
    let taps = c * kh * kw;
    let device = x.device().clone();
    let partial = device
        .new_buffer_builder()
        .with_size_for(taps * CHUNKS, DType::F32)
        .with_label("depthwise-grad-kernel-partial")
        .build()?;
    let params = DwParams::new(g, (n, c, h, w), (kh, kw), (ho, wo), false, false)?;
    let sfx = suffix(dtype)?;
    dispatch(
        &device,
        &format!("dw_grad_kernel_partial_{sfx}"),
        &[(x, xl, "input"), (gy, gl, "gradient")],
        &partial,
        &params,
        taps * CHUNKS,
    )?;
    let out = device
        .new_buffer_builder()
        .with_size_for(taps, dtype)
        .with_label("depthwise-grad-kernel")
        .build()?;
    let partial_storage = MetalStorage::new(partial, device.clone(), taps * CHUNKS, DType::F32);
    let partial_layout = Layout::contiguous(taps * CHUNKS);
    dispatch(
        &device,
        &format!("dw_sum_chunks_{sfx}"),
        &[(&partial_storage, &partial_layout, "partial sums")],
        &out,
        &params,
        taps,
    )?;
    Ok((
        MetalStorage::new(out, device, taps, dtype),
        Shape::from((c, 1, kh, kw)),
    ))
}
