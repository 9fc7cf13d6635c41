//! GPU correctness: the same model on CUDA and on the CPU gives the same predictions (top-1
//! equal; probabilities within 1e-4 in f32 and 1e-2 in bf16), and the CUDA depthwise kernels
//! (forward, fused bias + ReLU6, both gradients) agree with the CPU op. Runs only where a CUDA
//! GPU is present and the build has the `cuda` feature; elsewhere each test says it skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::{DType, Device, Tensor, Var};
use lathe_engine::nets::backbone::Backbone;
use lathe_engine::ops::depthwise::{depthwise_conv2d, depthwise_conv2d_bias};
use lathe_engine::templates::image::model::imagenet_probabilities;

fn gpu() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: no CUDA device in this build or on this machine ({e})");
            None
        }
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a
        .to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let b = b
        .to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn max_abs(a: &Tensor) -> f32 {
    a.to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn depthwise_kernels_match_the_cpu_op() {
    let Some(gpu) = gpu() else { return };
    for (stride, padding, size) in [(1, 1, 15), (2, 1, 16), (2, 2, 17), (1, 0, 9)] {
        let x = Tensor::randn(0f32, 1.0, (3, 8, size, size), &Device::Cpu).unwrap();
        let k = Tensor::randn(0f32, 1.0, (8, 1, 3, 3), &Device::Cpu).unwrap();
        let b = Tensor::randn(0f32, 1.0, 8, &Device::Cpu).unwrap();
        let cpu = depthwise_conv2d(&x, &k, stride, padding).unwrap();
        let cuda = depthwise_conv2d(
            &x.to_device(&gpu).unwrap(),
            &k.to_device(&gpu).unwrap(),
            stride,
            padding,
        )
        .unwrap();
        assert!(
            max_abs_diff(&cpu, &cuda) < 1e-4,
            "forward s{stride} p{padding}"
        );
        let cpu = depthwise_conv2d_bias(&x, &k, &b, stride, padding, true).unwrap();
        let cuda = depthwise_conv2d_bias(
            &x.to_device(&gpu).unwrap(),
            &k.to_device(&gpu).unwrap(),
            &b.to_device(&gpu).unwrap(),
            stride,
            padding,
            true,
        )
        .unwrap();
        assert!(
            max_abs_diff(&cpu, &cuda) < 1e-4,
            "fused s{stride} p{padding}"
        );
        // bf16: within bf16 rounding of the f32 result.
        let bf = depthwise_conv2d(
            &x.to_device(&gpu).unwrap().to_dtype(DType::BF16).unwrap(),
            &k.to_device(&gpu).unwrap().to_dtype(DType::BF16).unwrap(),
            stride,
            padding,
        )
        .unwrap();
        let f32_ref = depthwise_conv2d(&x, &k, stride, padding).unwrap();
        assert!(
            max_abs_diff(&f32_ref, &bf) < 0.02 * max_abs(&f32_ref).max(1.0),
            "bf16 s{stride} p{padding}"
        );
        // Gradients of sum(y * w) with respect to x and k.
        let grads = |dev: &Device| {
            let xv = Var::from_tensor(&x.to_device(dev).unwrap()).unwrap();
            let kv = Var::from_tensor(&k.to_device(dev).unwrap()).unwrap();
            let y = depthwise_conv2d(xv.as_tensor(), kv.as_tensor(), stride, padding).unwrap();
            let w = Tensor::arange(0f32, y.elem_count() as f32, &Device::Cpu)
                .unwrap()
                .reshape(y.shape())
                .unwrap()
                .affine(1e-3, -0.5)
                .unwrap()
                .to_device(dev)
                .unwrap();
            let g = (y * w).unwrap().sum_all().unwrap().backward().unwrap();
            (
                g.get(xv.as_tensor()).unwrap().clone(),
                g.get(kv.as_tensor()).unwrap().clone(),
            )
        };
        let (gx_cpu, gk_cpu) = grads(&Device::Cpu);
        let (gx_gpu, gk_gpu) = grads(&gpu);
        assert!(
            max_abs_diff(&gx_cpu, &gx_gpu) < 1e-4,
            "grad x s{stride} p{padding}"
        );
        assert!(
            max_abs_diff(&gk_cpu, &gk_gpu) < 1e-3 * max_abs(&gk_cpu).max(1.0),
            "grad k s{stride} p{padding}"
        );
    }
}

#[test]
fn mobilenet_v2_predicts_the_same_on_cuda_and_cpu() {
    let Some(gpu) = gpu() else { return };
    // LATHE_ASSETS: the repo's assets/ when the test binary runs away from its source tree
    // (built here, run on the GPU machine).
    let assets = std::env::var_os("LATHE_ASSETS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets"))
        .join("photos");
    let cpu = Backbone::load("mobilenet_v2", 224, None, 0, &Device::Cpu).unwrap();
    let f32_gpu = Backbone::load("mobilenet_v2", 224, None, 0, &gpu).unwrap();
    let mut bf16_gpu = Backbone::load("mobilenet_v2", 224, None, 0, &gpu).unwrap();
    bf16_gpu.set_precision(DType::BF16).unwrap();
    for photo in ["chelsea.png", "coffee.png"] {
        let bytes = std::fs::read(assets.join(photo)).unwrap();
        let p_cpu = imagenet_probabilities(&cpu, &bytes).unwrap();
        let top = |p: &[f32]| (0..p.len()).max_by(|a, b| p[*a].total_cmp(&p[*b])).unwrap();
        for (name, net, tol) in [("f32", &f32_gpu, 1e-4f32), ("bf16", &bf16_gpu, 1e-2)] {
            let p = imagenet_probabilities(net, &bytes).unwrap();
            let diff = p
                .iter()
                .zip(&p_cpu)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            println!(
                "{photo} {name}: top-1 {} (cpu {}), max |Δp| {diff:.2e}",
                top(&p),
                top(&p_cpu)
            );
            assert_eq!(top(&p), top(&p_cpu), "{photo} {name}");
            assert!(diff <= tol, "{photo} {name}: max |Δp| = {diff}");
        }
    }
}

/// Resizing on the GPU (what extraction does with un-augmented images) gives the CPU's bytes:
/// the same normalized floats within an ulp, in strict f32 and with TF32 products allowed.
#[test]
fn device_resize_on_the_gpu_matches_the_cpu_resize() {
    use lathe_engine::data::device_resize::DeviceResize;
    use lathe_engine::data::image_decode::Preprocessing;
    let Some(gpu) = gpu() else { return };
    let pre = Preprocessing::imagenet(224);
    for (w, h) in [(28usize, 28usize), (640, 480), (300, 91)] {
        let n = 8;
        let bytes: Vec<u8> = (0..n * h * w * 3)
            .map(|i| ((i as u64).wrapping_mul(2_654_435_761) >> 7) as u8)
            .collect();
        let cpu_x = Tensor::from_vec(bytes.clone(), (n, h, w, 3), &Device::Cpu).unwrap();
        let want = DeviceResize::new(&pre, w as u32, h as u32, &Device::Cpu)
            .unwrap()
            .unwrap()
            .apply(&cpu_x)
            .unwrap();
        for tf32 in [false, true] {
            candle_core::cuda::set_gemm_reduced_precision_f32(tf32);
            let gpu_x = Tensor::from_vec(bytes.clone(), (n, h, w, 3), &gpu).unwrap();
            let got = DeviceResize::new(&pre, w as u32, h as u32, &gpu)
                .unwrap()
                .unwrap()
                .apply(&gpu_x)
                .unwrap();
            let d = max_abs_diff(&got, &want);
            eprintln!("device resize {w}×{h} → 224², tf32 {tf32}: max |Δ| {d:e}");
            assert!(d < 1e-5, "{w}×{h}, tf32 {tf32}: max |Δ| {d}");
        }
        candle_core::cuda::set_gemm_reduced_precision_f32(false);
    }
}
