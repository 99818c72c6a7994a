/* attention.h — causal softmax attention kernels: rotary position embedding (GPT-NeoX half
 * rotation), blocked causal GQA attention forward/backward over a whole sequence, and the
 * one-query decode attention over a KV cache.
 *
 * Layout: q, k, v are column slices of one row-major buffer with row stride ld (the layer's
 * qkv projection): row b*T + t holds q heads [Hq, hd] at q, k heads [Hk, hd] at k and v heads
 * [Hk, hd] at v.  Query head h uses kv head h / (Hq / Hk).  Scores are scale * q.k; query t
 * sees keys 0..t, or with segment ids (seg) only the keys j <= t of its own segment
 * (seg[j] == seg[t]): documents packed into one row do not attend to each other.
 *
 * The sequence kernels work on strips of bq query rows against all keys they can see: two
 * GEMMs (S = Q K^T, O = P V) per strip, the softmax between them.  Backward recomputes P from
 * the saved row log-sum-exp instead of storing it.  Each worker thread needs a private work
 * area of attn_work_size() reals; `nwork` such areas are passed in. */
#ifndef SSMLM_ATTENTION_H
#define SSMLM_ATTENTION_H

#include "kernels/real.h"

/* Shape of one causal attention call. */
typedef struct attn_shape {
    int64_t B, T;     /* sequences, tokens per sequence */
    int64_t Hq, Hk;   /* query heads, kv heads (Hk divides Hq) */
    int64_t hd;       /* head dim */
    double scale;     /* softmax scale */
    int64_t bq;       /* query rows per strip (>= 1) */
    const int32_t *seg; /* [B, T] segment ids, non-decreasing per row, or NULL (one per row) */
} attn_shape;

/* Reals of one worker's work area: strip(s) [bq, T] plus a row vector [bq]. */
static inline int64_t attn_work_size(const attn_shape *s, int backward) {
    int64_t bq = s->bq < s->T ? s->bq : s->T;
    return (backward ? 2 : 1) * bq * s->T + bq;
}

/* Rotary tables for positions pos0 .. pos0+T-1 and rotary dim r (even):
 * cs, sn [T, r/2]; theta[t, j] = (pos0 + t) * base^(-2j/r), computed in `real`. */
void RNAME(rope_table)(real *cs, real *sn, int64_t pos0, int64_t T, int64_t r, double base);

/* x: [B*T rows, ld], each row holding nh heads of width hd from column 0.  Rotates the first r
 * dims of every head of row b*T + t by theta[t] (inverse != 0: by -theta, which is the
 * backward of the forward rotation):
 *   x1 = x[:r/2], x2 = x[r/2:r]  ->  [x1 cos - x2 sin, x1 sin + x2 cos]. */
void RNAME(rope_apply)(real *x, int64_t ld, int64_t B, int64_t T, int64_t nh, int64_t hd,
                       int64_t r, const real *cs, const real *sn, int inverse);

/* Causal attention forward.
 *   q, k, v: rows [B*T] with stride ld (see top);  o: [B*T, Hq*hd] with stride ldo;
 *   lse: [B, Hq, T] row log-sum-exp of the scaled, masked scores (saved for backward);
 *   work: nwork areas of attn_work_size(s, 0) reals.
 *   o[t] = sum_{j<=t, same segment} softmax_j(scale q_t.k_j) v_j. */
void RNAME(attn_forward)(const attn_shape *s, const real *q, const real *k, const real *v,
                         int64_t ld, real *o, int64_t ldo, real *lse, real *work, int nwork);

/* Causal attention backward given o, do (stride lddo) and lse from the forward.
 *   dq, dk, dv: same layout as q, k, v with stride ldd (OVERWRITTEN);
 *   work: nwork areas of attn_work_size(s, 1) reals.
 *   P = exp(scale q.k - lse), dP = do v^T, dS = P (dP - rowsum(do * o)),
 *   dq = scale dS k, dk = scale dS^T q, dv = P^T do. */
void RNAME(attn_backward)(const attn_shape *s, const real *q, const real *k, const real *v,
                          int64_t ld, const real *o, int64_t ldo, const real *dout, int64_t lddo,
                          const real *lse, real *dq, real *dk, real *dv, int64_t ldd, real *work,
                          int nwork);

/* Decode splits a sequence's keys into at most ATTN_DECODE_SPLITS spans of at least
 * ATTN_DECODE_MIN_SPAN keys (fewer spans for short contexts), the work items of its threads. */
#define ATTN_DECODE_SPLITS 16
#define ATTN_DECODE_MIN_SPAN 256

/* One query token per sequence against a KV cache (online softmax over chunks of keys).
 *   q: [B, Hq*hd] with stride ldq;  o: [B, Hq*hd] with stride ldo;
 *   key t of kv head g of sequence b at kc + b*ldb + t*ldt + g*hd, value likewise at vc;
 *   sequence b attends keys 0 .. last[b] (last[b] >= 0);
 *   work: attn_decode_work_size(B, Hq, hd) reals (partial softmax sums per key span).
 * Each key span reads every cache row once for all query heads; the spans depend only on
 * last[b], so o does not depend on the thread count or on the other sequences. */
int64_t RNAME(attn_decode_work_size)(int64_t B, int64_t Hq, int64_t hd);
void RNAME(attn_decode)(const real *q, int64_t ldq, const real *kc, const real *vc, int64_t ldb,
                        int64_t ldt, const int64_t *last, int64_t B, int64_t Hq, int64_t Hk,
                        int64_t hd, double scale, real *o, int64_t ldo, real *work);

#endif
