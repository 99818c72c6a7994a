/* vmath.h — elementwise math that the compiler vectorizes: exp, erf, log1p on [0, 1],
 * softplus (PyTorch threshold 20), sigmoid, SiLU and its derivative.  fp64: the C library;
 * fp32: branch-free polynomial forms (libm's expf/erff are scalar calls, which dominated the
 * elementwise loops).  Accuracy of the fp32 forms is stated on each. */
#ifndef SSMLM_VMATH_H
#define SSMLM_VMATH_H

#include "kernels/real.h"

/* exp that the compiler can vectorize (fp32: range reduction + degree-6 polynomial, within
 * 2 ulp; fp64: the C library's exp). */
static inline real RNAME(vexp)(real x) {
#if REAL_IS_F64
    return exp(x);
#else
    /* exp(x) = 2^k exp(r), k = round(x / ln 2) (adding and removing 1.5 * 2^23 rounds to
     * an integer; floorf would not vectorize), r = x - k ln 2 (two-part ln 2) */
    /* clamp to [-87, 88]; written so that NaN becomes -87 here (the integer conversion below
     * must never see NaN) and is restored at the end */
    float xc = x > -87.0f ? x : -87.0f;
    xc = xc < 88.0f ? xc : 88.0f;
    float k = (xc * 1.44269504089f + 12582912.0f) - 12582912.0f;
    float r = xc - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } sc;
    sc.i = ((int32_t)k + 127) << 23;
    return x == x ? p * sc.f : x;
#endif
}

/* log(1 + w) for w in [0, 1], vectorizable (fp32: atanh series, fp64: log1p). */
static inline real RNAME(vlog1p01)(real w) {
#if REAL_IS_F64
    return log1p(w);
#else
    /* log(1+w) = 2 atanh(s), s = w / (2 + w) in [0, 1/3] */
    float s = w / (2.0f + w), s2 = s * s;
    float p = 1.0f / 15;
    p = p * s2 + 1.0f / 13;
    p = p * s2 + 1.0f / 11;
    p = p * s2 + 1.0f / 9;
    p = p * s2 + 1.0f / 7;
    p = p * s2 + 1.0f / 5;
    p = p * s2 + 1.0f / 3;
    p = p * s2 + 1.0f;
    return 2.0f * s * p;
#endif
}

/* softplus(v) (PyTorch, threshold 20) and its derivative sigmoid(v), vectorizable:
 * softplus = max(v, 0) + log1p(e^{-|v|}),  sigmoid = (v >= 0 ? 1 : e^{-|v|}) / (1 + e^{-|v|}). */
static inline real RNAME(vsoftplus)(real v, real *sig) {
    real w = RNAME(vexp)(-(v < 0 ? -v : v));
    real inv = (real)1 / ((real)1 + w);
    *sig = v > (real)20 ? (real)1 : (v >= 0 ? inv : w * inv);
    return v > (real)20 ? v : (v > 0 ? v : 0) + RNAME(vlog1p01)(w);
}

/* sigmoid(v), vectorizable. */
static inline real RNAME(vsigmoid)(real v) {
    return (real)1 / ((real)1 + RNAME(vexp)(-v));
}

/* erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (the rational approximation used by XLA and Eigen);
 * absolute error below 4e-7, erf(+-4) rounds to +-1 in fp32. */
static inline real RNAME(verf)(real x) {
#if REAL_IS_F64
    return erf(x);
#else
    x = x > 4.0f ? 4.0f : x;
    x = x < -4.0f ? -4.0f : x;
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 - 2.10102402082508e-06f;
    p = p * x2 - 5.69250639462346e-05f;
    p = p * x2 - 7.34990630326855e-04f;
    p = p * x2 - 2.95459980854025e-03f;
    p = p * x2 - 1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 - 2.13374055278905e-04f;
    q = q * x2 - 1.68282697438203e-03f;
    q = q * x2 - 7.37332916720468e-03f;
    q = q * x2 - 1.42647390514189e-02f;
    return x * p / q;
#endif
}

/* Scalar conveniences built on the above. */
static inline real RNAME(sigmoid)(real v) { return RNAME(vsigmoid)(v); }
static inline real RNAME(silu)(real v) { return v * RNAME(vsigmoid)(v); }
/* silu'(v) = s (1 + v (1 - s)), s = sigmoid(v) */
static inline real RNAME(silu_grad)(real v) {
    real s = RNAME(vsigmoid)(v);
    return s * ((real)1 + v * ((real)1 - s));
}
static inline real RNAME(softplus)(real v) {
    real s;
    return RNAME(vsoftplus)(v, &s);
}
/* d softplus / dv = sigmoid(v) (1 above the threshold) */
static inline real RNAME(softplus_grad)(real v) { return v > (real)20 ? (real)1 : RNAME(vsigmoid)(v); }

#endif
