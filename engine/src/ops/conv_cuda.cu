
// Grid: x over the pixels of a plane, y over the (image, channel) planes.
template <typename T>
__device__ void bias_act(T* y, const T* b, int c, int plane, long rows, int relu6) {
    for (long row = blockIdx.y; row < rows; row += gridDim.y) {
        const float bias = ld(b, (long)(row % c));
        T* yp = y + row * plane;
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < plane;
             i += blockDim.x * gridDim.x) {
            float v = ld(yp, i) + bias;
            if (relu6) v = fminf(fmaxf(v, 0.f), 6.f);
            st(yp, i, v);
        }
    }
}

// Direct convolution, one thread per output pixel; y over (image, output channel) planes.
template <typename T>
__device__ void dense(const T* x, const T* k, const T* b, T* y, int n, int ci, int h, int w,
                      int co, int kh, int kw, int ho, int wo, int s, int p, int relu6) {
    const int spatial = ho * wo;
    const long planes = (long)n * co;
    for (long plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const int o = (int)(plane % co);
        const long img = plane / co;
        const T* xi = x + img * ci * h * w;
        const T* ko = k + (long)o * ci * kh * kw;
        const float bias = ld(b, o);
        T* yp = y + plane * spatial;
        for (int pos = blockIdx.x * blockDim.x + threadIdx.x; pos < spatial;
             pos += blockDim.x * gridDim.x) {
            const int oy = pos / wo, ox = pos - oy * wo;
            float acc = bias;
            for (int c = 0; c < ci; ++c) {
                const T* xc = xi + (long)c * h * w;
                const T* kc = ko + c * kh * kw;
                for (int ky = 0; ky < kh; ++ky) {
                    const int iy = oy * s + ky - p;
                    if (iy < 0 || iy >= h) continue;
                    for (int kx = 0; kx < kw; ++kx) {
                        const int ix = ox * s + kx - p;
                        if (ix < 0 || ix >= w) continue;
                        acc += ld(xc, iy * w + ix) * ld(kc, ky * kw + kx);
                    }
                }
            }
            if (relu6) acc = fminf(fmaxf(acc, 0.f), 6.f);
            st(yp, pos, acc);
        }
    }
}

// Channels-last (NHWC) kernels: grid x over one image's elements (channel fastest, so loads
// and stores are coalesced), y over images.

// y [N, P, C] += b [C] (+ ReLU6), in place.
template <typename T>
__device__ void bias_act_last(T* y, const float* b, long n, int per_image, int c, int relu6) {
    for (long img = blockIdx.y; img < n; img += gridDim.y) {
        T* yi = y + img * per_image;
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < per_image;
             i += blockDim.x * gridDim.x) {
            float v = ld(yi, i) + ld(b, i % c);
            if (relu6) v = fminf(fmaxf(v, 0.f), 6.f);
            st(yi, i, v);
        }
    }
}

// NCHW image batch in, NHWC out: the stem of the channels-last path. One thread computes
// DENSE_GROUP output channels of one pixel from registers: the kernel and bias sit in shared
// memory (the launch sizes it), each input value is loaded once per thread, and the threads of a
// warp write neighbouring channels, then pixels — one coalesced run of the NHWC output.
#define DENSE_GROUP 8
extern __shared__ float lathe_dense_smem[];
template <typename T>
__device__ void dense_last(const T* x, const T* k, const float* b, T* y, int n, int ci, int h,
                           int w, int co, int kh, int kw, int ho, int wo, int s, int p,
                           int relu6) {
    const int taps = ci * kh * kw, kn = co * taps;
    float* sk = lathe_dense_smem;
    for (int i = threadIdx.x; i < kn; i += blockDim.x) sk[i] = ld(k, i);
    for (int i = threadIdx.x; i < co; i += blockDim.x) sk[kn + i] = b[i];
    __syncthreads();
    const int groups = (co + DENSE_GROUP - 1) / DENSE_GROUP;
    const int items = ho * wo * groups;
    for (long img = blockIdx.y; img < n; img += gridDim.y) {
        const T* xi = x + img * ci * h * w;
        T* yi = y + img * (long)ho * wo * co;
        for (int item = blockIdx.x * blockDim.x + threadIdx.x; item < items;
             item += blockDim.x * gridDim.x) {
            const int g = item % groups, pix = item / groups;
            const int oy = pix / wo, ox = pix - oy * wo;
            const int o0 = g * DENSE_GROUP;
            float acc[DENSE_GROUP];
#pragma unroll
            for (int j = 0; j < DENSE_GROUP; ++j) acc[j] = o0 + j < co ? sk[kn + o0 + j] : 0.f;
            for (int c = 0; c < ci; ++c) {
                for (int ky = 0; ky < kh; ++ky) {
                    const int iy = oy * s + ky - p;
                    if (iy < 0 || iy >= h) continue;
                    for (int kx = 0; kx < kw; ++kx) {
                        const int ix = ox * s + kx - p;
                        if (ix < 0 || ix >= w) continue;
                        const float v = ld(xi, ((long)c * h + iy) * w + ix);
                        const int tap = (c * kh + ky) * kw + kx;
#pragma unroll
                        for (int j = 0; j < DENSE_GROUP; ++j)
                            if (o0 + j < co) acc[j] += v * sk[(o0 + j) * taps + tap];
                    }
                }
            }
#pragma unroll
            for (int j = 0; j < DENSE_GROUP; ++j) {
                if (o0 + j >= co) break;
                float a = acc[j];
                if (relu6) a = fminf(fmaxf(a, 0.f), 6.f);
                st(yi, (long)pix * co + o0 + j, a);
            }
        }
    }
}

// Depthwise convolution + bias (+ ReLU6), NHWC in and out; k [C,1,kh,kw].
template <typename T>
__device__ void dw_last(const T* x, const T* k, const float* b, T* y, int n, int c, int h, int w,
                        int kh, int kw, int ho, int wo, int s, int p, int relu6) {
    const int per_image = ho * wo * c;
    for (long img = blockIdx.y; img < n; img += gridDim.y) {
        const T* xi = x + img * h * w * c;
        T* yi = y + img * per_image;
        for (int pos = blockIdx.x * blockDim.x + threadIdx.x; pos < per_image;
             pos += blockDim.x * gridDim.x) {
            const int ch = pos % c, pix = pos / c;
            const int oy = pix / wo, ox = pix - oy * wo;
            const T* kc = k + ch * kh * kw;
            float acc = ld(b, ch);
            for (int ky = 0; ky < kh; ++ky) {
                const int iy = oy * s + ky - p;
                if (iy < 0 || iy >= h) continue;
                for (int kx = 0; kx < kw; ++kx) {
                    const int ix = ox * s + kx - p;
                    if (ix < 0 || ix >= w) continue;
                    acc += ld(xi, ((long)iy * w + ix) * c + ch) * ld(kc, ky * kw + kx);
                }
            }
            if (relu6) acc = fminf(fmaxf(acc, 0.f), 6.f);
            st(yi, pos, acc);
        }
    }
}

// 3×3 depthwise, NHWC, stride S: each thread computes 4 neighbouring output pixels of one
// channel, so every input value it loads serves up to 3 outputs and the 9 taps sit in registers
// (the one-output kernel above re-reads each input 9 times through the cache).
template <typename T, int S>
__device__ void dw3_last(const T* x, const T* k, const float* b, T* y, int n, int c, int h, int w,
                         int ho, int wo, int p, int relu6) {
    constexpr int OX = 4, SPAN = (OX - 1) * S + 3;
    const int wg = (wo + OX - 1) / OX;
    const int per_image = ho * wg * c;
    for (long img = blockIdx.y; img < n; img += gridDim.y) {
        const T* xi = x + img * h * w * c;
        T* yi = y + img * ho * wo * c;
        for (int it = blockIdx.x * blockDim.x + threadIdx.x; it < per_image;
             it += blockDim.x * gridDim.x) {
            const int ch = it % c, rest = it / c;
            const int gx = rest % wg, oy = rest / wg;
            const int ox0 = gx * OX;
            float wk[9];
#pragma unroll
            for (int t = 0; t < 9; ++t) wk[t] = ld(k, ch * 9 + t);
            const float bias = ld(b, ch);
            float acc[OX];
#pragma unroll
            for (int j = 0; j < OX; ++j) acc[j] = bias;
#pragma unroll
            for (int ky = 0; ky < 3; ++ky) {
                const int iy = oy * S + ky - p;
                if (iy < 0 || iy >= h) continue;
                const T* row = xi + (long)iy * w * c + ch;
#pragma unroll
                for (int cx = 0; cx < SPAN; ++cx) {
                    const int ix = ox0 * S + cx - p;
                    const float v = (ix >= 0 && ix < w) ? ld(row, (long)ix * c) : 0.f;
#pragma unroll
                    for (int j = 0; j < OX; ++j) {
                        const int kx = cx - j * S;
                        if (kx >= 0 && kx < 3) acc[j] += v * wk[ky * 3 + kx];
                    }
                }
            }
#pragma unroll
            for (int j = 0; j < OX; ++j) {
                const int ox = ox0 + j;
                if (ox < wo) {
                    float a = acc[j];
                    if (relu6) a = fminf(fmaxf(a, 0.f), 6.f);
                    st(yi, ((long)oy * wo + ox) * c + ch, a);
                }
            }
        }
    }
}

#define INSTANCE(T, N)                                                                         \
extern "C" __global__ void bias_act_last_##N(T* y, const float* b, long n, int per_image, int c,   \
    int relu6) { bias_act_last<T>(y, b, n, per_image, c, relu6); }                             \
extern "C" __global__ void dense_last_##N(const T* x, const T* k, const float* b, T* y, int n,     \
    int ci, int h, int w, int co, int kh, int kw, int ho, int wo, int s, int p, int relu6) {    \
    dense_last<T>(x, k, b, y, n, ci, h, w, co, kh, kw, ho, wo, s, p, relu6); }                  \
extern "C" __global__ void dw_last_##N(const T* x, const T* k, const float* b, T* y, int n, int c, \
    int h, int w, int kh, int kw, int ho, int wo, int s, int p, int relu6) {                    \
    dw_last<T>(x, k, b, y, n, c, h, w, kh, kw, ho, wo, s, p, relu6); }                          \
extern "C" __global__ void dw3_last_s1_##N(const T* x, const T* k, const float* b, T* y, int n,    \
    int c, int h, int w, int ho, int wo, int p, int relu6) {                                    \
    dw3_last<T, 1>(x, k, b, y, n, c, h, w, ho, wo, p, relu6); }                                 \
extern "C" __global__ void dw3_last_s2_##N(const T* x, const T* k, const float* b, T* y, int n,    \
    int c, int h, int w, int ho, int wo, int p, int relu6) {                                    \
    dw3_last<T, 2>(x, k, b, y, n, c, h, w, ho, wo, p, relu6); }                                 \
extern "C" __global__ void bias_act_##N(T* y, const T* b, int c, int plane, long rows,         \
    int relu6) { bias_act<T>(y, b, c, plane, rows, relu6); }                                    \
extern "C" __global__ void dense_##N(const T* x, const T* k, const T* b, T* y, int n, int ci,  \
    int h, int w, int co, int kh, int kw, int ho, int wo, int s, int p, int relu6) {            \
    dense<T>(x, k, b, y, n, ci, h, w, co, kh, kw, ho, wo, s, p, relu6); }
INSTANCE(float, f32)
INSTANCE(bf16, bf16)
INSTANCE(f16, f16)
