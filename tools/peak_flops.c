/* This machine's arithmetic peak per core, measured: float32 FMA, bfloat16 dot products (AVX512_BF16) and int8 dot
 * products (AVX512_VNNI), 512-bit, twelve independent accumulators held in registers; and the clock, from a chain of
 * dependent adds (one a cycle). Built and run by tools/backbone_gflops.py:  peak_flops {clock|f32|bf16|int8} [N] */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* twelve accumulators, each updated once a step: STEP(op) applies op to all of them */
#define STEP(op) a0 = op(a0); a1 = op(a1); a2 = op(a2); a3 = op(a3); a4 = op(a4); a5 = op(a5); \
                 a6 = op(a6); a7 = op(a7); a8 = op(a8); a9 = op(a9); a10 = op(a10); a11 = op(a11);
#define START(set, cast) a0 = set(cast 1); a1 = set(cast 2); a2 = set(cast 3); a3 = set(cast 4); a4 = set(cast 5); \
    a5 = set(cast 6); a6 = set(cast 7); a7 = set(cast 8); a8 = set(cast 9); a9 = set(cast 10); a10 = set(cast 11); \
    a11 = set(cast 12);
#define SUM(f) (f(a0) + f(a1) + f(a2) + f(a3) + f(a4) + f(a5) + f(a6) + f(a7) + f(a8) + f(a9) + f(a10) + f(a11))

static __m512 x, y;
static __m512bh xb, yb;
static __m512i xi, yi;
#define FMA(a) _mm512_fmadd_ps(a, x, y)
#define DPBF16(a) _mm512_dpbf16_ps(a, xb, yb)
#define DPBUSD(a) _mm512_dpbusd_epi32(a, xi, yi)

/* a kernel NAME: TYPE accumulators started by START(SET, CAST), each stepped by OP, LANES multiply-adds a step each */
#define KERNEL(name, type, set, cast, op, reduce, lanes)                        \
    __attribute__((noinline)) static double name(long steps) {                  \
        type a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11;                  \
        START(set, cast)                                                        \
        double t = now();                                                       \
        for (long k = 0; k < steps; k++) { STEP(op) }                           \
        t = now() - t;                                                          \
        if (SUM(reduce) == 12345) printf("?");                                  \
        return (double)steps * 12 * (lanes) * 2 / t;                            \
    }
KERNEL(f32, __m512, _mm512_set1_ps, (float), FMA, _mm512_reduce_add_ps, 16)          /* 16 float32 lanes */
KERNEL(bf16, __m512, _mm512_set1_ps, (float), DPBF16, _mm512_reduce_add_ps, 32)      /* 32 bfloat16 pairs */
KERNEL(int8, __m512i, _mm512_set1_epi32, (int), DPBUSD, _mm512_reduce_add_epi32, 64) /* 64 u8 x s8 products */

__attribute__((noinline)) static double clock_ghz(long steps) {  /* four dependent adds a step: one a cycle */
    long v = 0;
    double t = now();
    for (long k = 0; k < steps; k++) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(v));
    t = now() - t;
    return (double)steps * 4 / t / 1e9;
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "f32";
    long n = argc > 2 ? atol(argv[2]) : 100000000L;
    x = _mm512_set1_ps(0.999999f); y = _mm512_set1_ps(1e-7f);
    xb = (__m512bh)_mm512_set1_epi16(0x3f80); yb = (__m512bh)_mm512_set1_epi16(0x3f80);
    xi = _mm512_set1_epi8(1); yi = _mm512_set1_epi8(1);
    double r = !strcmp(what, "f32") ? f32(n / 12) : !strcmp(what, "bf16") ? bf16(n / 12)
             : !strcmp(what, "int8") ? int8(n / 12) : clock_ghz(n);
    printf("%.6g\n", r);
    return 0;
}
