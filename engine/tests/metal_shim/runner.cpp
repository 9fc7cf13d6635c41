// Runs one of Lathe's Metal depthwise kernels on the CPU, one call per thread of its grid.
// Usage: runner OP DTYPE DIR — OP forward|grad_input|grad_kernel, DTYPE f32|f16; DIR holds
// params.bin (13 little-endian i32: DwParams), a.bin, b.bin, c.bin (f32 arrays; their meaning
// depends on OP, see below); the result is written to DIR/out.bin as f32.
#include <metal_stdlib>
#include LATHE_SHADER
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static std::vector<float> read(const std::string& path) {
    std::vector<float> v;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return v;
    float x;
    while (std::fread(&x, sizeof x, 1, f) == 1) v.push_back(x);
    std::fclose(f);
    return v;
}

template <typename T>
static std::vector<T> cast(const std::vector<float>& v) {
    std::vector<T> out(v.size() + 1);  // + 1: never a null pointer, even when empty
    for (size_t i = 0; i < v.size(); ++i) out[i] = T(v[i]);
    return out;
}

template <typename T>
static std::vector<float> back(const std::vector<T>& v, size_t n) {
    std::vector<float> out(n);
    for (size_t i = 0; i < n; ++i) out[i] = float(v[i]);
    return out;
}

#define RUN(T, N)                                                                           \
    if (dtype == #N) {                                                                       \
        auto a = cast<T>(A), b = cast<T>(B), c = cast<T>(C);                                \
        if (op == "forward") { /* a = x, b = k, c = bias */                                 \
            size_t n = (size_t)q.n * q.c * q.ho * q.wo;                                      \
            std::vector<T> y(n);                                                             \
            for (uint g = 0; g < n; ++g) dw_forward_##N(a.data(), b.data(), c.data(), y.data(), q, g); \
            out = back(y, n);                                                                \
        } else if (op == "grad_input") { /* a = grad of the output, b = k */                \
            size_t n = (size_t)q.n * q.c * q.h * q.w;                                        \
            std::vector<T> gx(n);                                                            \
            for (uint g = 0; g < n; ++g) dw_grad_input_##N(a.data(), b.data(), gx.data(), q, g); \
            out = back(gx, n);                                                               \
        } else if (op == "grad_kernel") { /* a = x, b = grad of the output */               \
            size_t taps = (size_t)q.c * q.kh * q.kw;                                         \
            std::vector<float> partial(taps * q.chunks);                                     \
            for (uint g = 0; g < partial.size(); ++g)                                        \
                dw_grad_kernel_partial_##N(a.data(), b.data(), partial.data(), q, g);        \
            std::vector<T> gk(taps);                                                         \
            for (uint g = 0; g < taps; ++g) dw_sum_chunks_##N(partial.data(), gk.data(), q, g); \
            out = back(gk, taps);                                                            \
        }                                                                                    \
    }

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: runner OP DTYPE DIR\n");
        return 2;
    }
    const std::string op = argv[1], dtype = argv[2], dir = argv[3];
    DwParams q;
    FILE* f = std::fopen((dir + "/params.bin").c_str(), "rb");
    if (!f || std::fread(&q, sizeof q, 1, f) != 1) {
        std::fprintf(stderr, "cannot read %s/params.bin\n", dir.c_str());
        return 1;
    }
    std::fclose(f);
    const auto A = read(dir + "/a.bin"), B = read(dir + "/b.bin"), C = read(dir + "/c.bin");
    std::vector<float> out;
    RUN(float, f32)
    RUN(half, f16)
    if (out.empty()) {
        std::fprintf(stderr, "unknown op %s or dtype %s\n", op.c_str(), dtype.c_str());
        return 2;
    }
    FILE* o = std::fopen((dir + "/out.bin").c_str(), "wb");
    if (!o) return 1;
    std::fwrite(out.data(), sizeof(float), out.size(), o);
    std::fclose(o);
    return 0;
}
