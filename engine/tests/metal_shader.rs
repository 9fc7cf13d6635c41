//! The Metal depthwise kernels (`engine/src/ops/depthwise.metal`) against the CPU ops, on the
//! CPU: the shader is compiled as C++ with a small stand-in for `<metal_stdlib>`
//! (`tests/metal_shim/`) and each kernel runs once per thread of its grid. This checks the
//! shader's index math, padding, strides, bias/ReLU6, both gradients and the chunked kernel
//! gradient, in float and half — everything but the Metal compiler and runtime, which need a Mac.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::{Device, Tensor, Var};
use lathe_engine::ops::depthwise::{depthwise_conv2d, depthwise_conv2d_bias};
use std::path::{Path, PathBuf};
use std::process::Command;

fn shim_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/metal_shim")
}

/// Compiles the runner once per test process.
fn runner() -> PathBuf {
    static RUNNER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    RUNNER
        .get_or_init(|| {
            let out = std::env::temp_dir().join(format!("lathe-metal-runner-{}", std::process::id()));
            let shader = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ops/depthwise.metal");
            let status = Command::new("c++")
                .args(["-std=c++17", "-O1", "-Wall", "-Werror", "-Wno-attributes"])
                .arg(format!("-I{}", shim_dir().display()))
                .arg(format!("-DLATHE_SHADER=\"{}\"", shader.display()))
                .arg(shim_dir().join("runner.cpp"))
                .arg("-o")
                .arg(&out)
                .status()
                .expect("a C++ compiler (`c++`, from g++) is needed: scripts/install-deps.sh installs it");
            assert!(status.success(), "the Metal shader does not compile as C++ (see above)");
            out
        })
        .clone()
}

/// Sizes of one case: (n, c, h, w, k, stride, padding).
type Case = (usize, usize, usize, usize, usize, usize, usize);

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let v = (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed.wrapping_mul(97));
            ((v >> 8) % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn write(dir: &Path, name: &str, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// Runs `op` in `dtype` through the shim and returns its f32 output.
#[allow(clippy::too_many_arguments)]
fn run(
    op: &str,
    dtype: &str,
    case: Case,
    flags: (bool, bool),
    a: &[f32],
    b: &[f32],
    c: &[f32],
) -> Vec<f32> {
    let (n, ch, h, w, k, s, p) = case;
    let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
    let chunks = 3;
    let params: Vec<i32> = [
        n,
        ch,
        h,
        w,
        k,
        k,
        ho,
        wo,
        s,
        p,
        flags.0 as usize,
        flags.1 as usize,
        chunks,
    ]
    .iter()
    .map(|&v| v as i32)
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = params.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(dir.path().join("params.bin"), bytes).unwrap();
    write(dir.path(), "a.bin", a);
    write(dir.path(), "b.bin", b);
    write(dir.path(), "c.bin", c);
    let status = Command::new(runner())
        .args([op, dtype])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "runner {op} {dtype} failed");
    std::fs::read(dir.path().join("out.bin"))
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / (1.0 + w.abs()))
        .fold(0f32, f32::max);
    assert!(
        worst <= tol,
        "{what}: max relative difference {worst} > {tol}"
    );
}

#[test]
fn metal_depthwise_kernels_compute_what_the_cpu_ops_compute() {
    let dev = Device::Cpu;
    let cases: [Case; 4] = [
        (2, 3, 7, 6, 3, 1, 1),
        (2, 4, 9, 8, 3, 2, 1),
        (1, 2, 8, 8, 5, 2, 2),
        (3, 2, 5, 7, 3, 1, 0),
    ];
    for case in cases {
        let (n, c, h, w, k, s, p) = case;
        let xs = values(n * c * h * w, 1);
        let ks = values(c * k * k, 2);
        let bs = values(c, 3);
        let x =
            Var::from_tensor(&Tensor::from_vec(xs.clone(), (n, c, h, w), &dev).unwrap()).unwrap();
        let kt =
            Var::from_tensor(&Tensor::from_vec(ks.clone(), (c, 1, k, k), &dev).unwrap()).unwrap();
        let bias = Tensor::from_vec(bs.clone(), c, &dev).unwrap();
        // Forward with bias + ReLU6 (the scale of 5 puts some values above 6 and some below 0).
        let x3 = (x.as_tensor() * 5.0).unwrap();
        let want = depthwise_conv2d_bias(&x3, kt.as_tensor(), &bias, s, p, true).unwrap();
        let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
        assert!(
            want.contains(&6.0) && want.contains(&0.0),
            "{case:?}: ReLU6 not exercised"
        );
        let x3s: Vec<f32> = xs.iter().map(|v| v * 5.0).collect();
        for (dtype, tol) in [("f32", 1e-5), ("f16", 2e-2)] {
            let got = run("forward", dtype, case, (true, true), &x3s, &ks, &bs);
            assert_close(&format!("{case:?} forward {dtype}"), &got, &want, tol);
        }
        // Forward without bias, and both gradients of `Σ y · r` for a fixed r.
        let y = depthwise_conv2d(x.as_tensor(), kt.as_tensor(), s, p).unwrap();
        let plain: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        let r = Tensor::from_vec(values(y.elem_count(), 4), y.shape(), &dev).unwrap();
        let grads = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gx: Vec<f32> = grads
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let gk: Vec<f32> = grads
            .get(&kt)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let rs: Vec<f32> = r.flatten_all().unwrap().to_vec1().unwrap();
        for (dtype, tol) in [("f32", 1e-5), ("f16", 3e-2)] {
            let got = run("forward", dtype, case, (false, false), &xs, &ks, &[]);
            assert_close(
                &format!("{case:?} forward, no bias {dtype}"),
                &got,
                &plain,
                tol,
            );
            let got = run("grad_input", dtype, case, (false, false), &rs, &ks, &[]);
            assert_close(&format!("{case:?} input gradient {dtype}"), &got, &gx, tol);
            let got = run("grad_kernel", dtype, case, (false, false), &xs, &rs, &[]);
            assert_close(
                &format!("{case:?} kernel gradient {dtype}"),
                &got,
                &gk,
                tol * 4.0,
            );
        }
    }
}

/// The comparison can fail: a shader with one wrong index is caught.
#[test]
fn a_wrong_kernel_is_caught() {
    let case: Case = (1, 2, 6, 6, 3, 1, 1);
    let (n, c, h, w, k, s, p) = case;
    let xs = values(n * c * h * w, 5);
    let ks = values(c * k * k, 6);
    let dev = Device::Cpu;
    let x = Tensor::from_vec(xs.clone(), (n, c, h, w), &dev).unwrap();
    let kt = Tensor::from_vec(ks.clone(), (c, 1, k, k), &dev).unwrap();
    let want: Vec<f32> = depthwise_conv2d(&x, &kt, s, p)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    // The kernel flipped left to right: what an index slip in the shader would compute.
    let flipped: Vec<f32> = ks
        .chunks(k)
        .flat_map(|row| row.iter().rev().copied().collect::<Vec<_>>())
        .collect();
    let got = run("forward", "f32", case, (false, false), &xs, &flipped, &[]);
    let worst = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    assert!(
        worst > 1e-2,
        "a flipped kernel went unnoticed (max difference {worst})"
    );
}
