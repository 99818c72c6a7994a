/* real.h — the precision of numeric code.  Files under src/kernels, src/layers and
 * src/model/forward.c are compiled twice: as fp32 (default, names suffixed _f32) and with
 * -DSSMLM_REAL_F64 as fp64 (suffix _f64).  RNAME(x) gives the suffixed name. */
#ifndef SSMLM_REAL_H
#define SSMLM_REAL_H

#include <math.h>
#include <stdint.h>

#ifdef SSMLM_REAL_F64
typedef double real;
#define RNAME(n) n##_f64
#define REAL_IS_F64 1
#define REXP exp
#define RLOG log
#define RSQRT sqrt
#define RTANH tanh
#define RERF erf
#define RCOS cos
#define RSIN sin
#else
typedef float real;
#define RNAME(n) n##_f32
#define REAL_IS_F64 0
#define REXP expf
#define RLOG logf
#define RSQRT sqrtf
#define RTANH tanhf
#define RERF erff
#define RCOS cosf
#define RSIN sinf
#endif

#endif
