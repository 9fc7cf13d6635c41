// Lathe's depthwise-convolution kernels for Apple GPUs (Metal Shading Language), compiled at run
// time by `depthwise_metal.rs`: forward (with optional bias and ReLU6), gradient of the input,
// and gradient of the kernel (partial sums per chunk of pixels, then a sum over chunks). Every
// kernel reads and writes float or half and accumulates in float. One thread per output value;
// no threadgroup memory or barriers, so the arithmetic can also be run on the CPU through a C++
// shim (engine/tests/metal_shader.rs).
#include <metal_stdlib>
using namespace metal;

// Sizes of one depthwise layer: input [n, c, h, w], kernel [c, 1, kh, kw], output [n, c, ho, wo].
struct DwParams {
    int n, c, h, w, kh, kw, ho, wo, s, p, has_bias, relu6, chunks;
};

template <typename T>
void dw_forward(device const T* x, device const T* k, device const T* b, device T* y,
                constant DwParams& q, uint gid) {
    const long total = (long)q.n * q.c * q.ho * q.wo;
    if ((long)gid >= total) return;
    const int ox = (int)(gid % (uint)q.wo);
    const int oy = (int)((gid / (uint)q.wo) % (uint)q.ho);
    const long plane = (long)(gid / (uint)(q.wo * q.ho));
    const int ch = (int)(plane % q.c);
    device const T* xp = x + plane * q.h * q.w;
    device const T* kp = k + (long)ch * q.kh * q.kw;
    float acc = q.has_bias ? float(b[ch]) : 0.0f;
    for (int ky = 0; ky < q.kh; ++ky) {
        const int iy = oy * q.s + ky - q.p;
        if (iy < 0 || iy >= q.h) continue;
        for (int kx = 0; kx < q.kw; ++kx) {
            const int ix = ox * q.s + kx - q.p;
            if (ix < 0 || ix >= q.w) continue;
            acc += float(xp[iy * q.w + ix]) * float(kp[ky * q.kw + kx]);
        }
    }
    if (q.relu6) acc = clamp(acc, 0.0f, 6.0f);
    y[gid] = T(acc);
}

// One thread per input value: the output values it contributed to, times their kernel taps.
template <typename T>
void dw_grad_input(device const T* gy, device const T* k, device T* gx, constant DwParams& q,
                   uint gid) {
    const long total = (long)q.n * q.c * q.h * q.w;
    if ((long)gid >= total) return;
    const int ix = (int)(gid % (uint)q.w);
    const int iy = (int)((gid / (uint)q.w) % (uint)q.h);
    const long plane = (long)(gid / (uint)(q.w * q.h));
    const int ch = (int)(plane % q.c);
    device const T* gp = gy + plane * q.ho * q.wo;
    device const T* kp = k + (long)ch * q.kh * q.kw;
    float acc = 0.0f;
    for (int ky = 0; ky < q.kh; ++ky) {
        const int ty = iy + q.p - ky;
        if (ty < 0 || ty % q.s != 0) continue;
        const int oy = ty / q.s;
        if (oy >= q.ho) continue;
        for (int kx = 0; kx < q.kw; ++kx) {
            const int tx = ix + q.p - kx;
            if (tx < 0 || tx % q.s != 0) continue;
            const int ox = tx / q.s;
            if (ox >= q.wo) continue;
            acc += float(gp[oy * q.wo + ox]) * float(kp[ky * q.kw + kx]);
        }
    }
    gx[gid] = T(acc);
}

// Thread (tap, chunk): the sum over chunk `chunk` of the (image, output pixel) pairs of
// x[at the tap] · grad — written to partial[tap * chunks + chunk] in float.
template <typename T>
void dw_grad_kernel_partial(device const T* x, device const T* gy, device float* partial,
                            constant DwParams& q, uint gid) {
    const int taps = q.c * q.kh * q.kw;
    if ((long)gid >= (long)taps * q.chunks) return;
    const int chunk = (int)(gid % (uint)q.chunks);
    const int tap = (int)(gid / (uint)q.chunks);
    const int kx = tap % q.kw;
    const int ky = (tap / q.kw) % q.kh;
    const int ch = tap / (q.kw * q.kh);
    const long pairs = (long)q.n * q.ho * q.wo;
    const long per = (pairs + q.chunks - 1) / q.chunks;
    const long start = chunk * per;
    const long end = start + per < pairs ? start + per : pairs;
    float acc = 0.0f;
    for (long i = start; i < end; ++i) {
        const int ox = (int)(i % q.wo);
        const int oy = (int)((i / q.wo) % q.ho);
        const long img = i / ((long)q.wo * q.ho);
        const int iy = oy * q.s + ky - q.p;
        const int ix = ox * q.s + kx - q.p;
        if (iy < 0 || iy >= q.h || ix < 0 || ix >= q.w) continue;
        const long plane = img * q.c + ch;
        acc += float(x[(plane * q.h + iy) * q.w + ix]) * float(gy[(plane * q.ho + oy) * q.wo + ox]);
    }
    partial[gid] = acc;
}

// One thread per tap: the sum of its chunks' partial sums.
template <typename T>
void dw_sum_chunks(device const float* partial, device T* gk, constant DwParams& q, uint gid) {
    const int taps = q.c * q.kh * q.kw;
    if ((int)gid >= taps) return;
    float acc = 0.0f;
    for (int j = 0; j < q.chunks; ++j) acc += partial[(long)gid * q.chunks + j];
    gk[gid] = T(acc);
}

#define LATHE_DW_KERNELS(T, N)                                                                   \
kernel void dw_forward_##N(device const T* x [[buffer(0)]], device const T* k [[buffer(1)]],     \
                           device const T* b [[buffer(2)]], device T* y [[buffer(3)]],           \
                           constant DwParams& q [[buffer(4)]],                                   \
                           uint gid [[thread_position_in_grid]]) {                               \
    dw_forward<T>(x, k, b, y, q, gid);                                                           \
}                                                                                                \
kernel void dw_grad_input_##N(device const T* gy [[buffer(0)]], device const T* k [[buffer(1)]], \
                              device T* gx [[buffer(2)]], constant DwParams& q [[buffer(3)]],    \
                              uint gid [[thread_position_in_grid]]) {                            \
    dw_grad_input<T>(gy, k, gx, q, gid);                                                         \
}                                                                                                \
kernel void dw_grad_kernel_partial_##N(device const T* x [[buffer(0)]],                          \
                                       device const T* gy [[buffer(1)]],                         \
                                       device float* partial [[buffer(2)]],                      \
                                       constant DwParams& q [[buffer(3)]],                       \
                                       uint gid [[thread_position_in_grid]]) {                   \
    dw_grad_kernel_partial<T>(x, gy, partial, q, gid);                                           \
}                                                                                                \
kernel void dw_sum_chunks_##N(device const float* partial [[buffer(0)]],                         \
                              device T* gk [[buffer(1)]], constant DwParams& q [[buffer(2)]],    \
                              uint gid [[thread_position_in_grid]]) {                            \
    dw_sum_chunks<T>(partial, gk, q, gid);                                                       \
}

LATHE_DW_KERNELS(float, f32)
LATHE_DW_KERNELS(half, f16)
