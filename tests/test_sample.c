/* test_sample.c — next-token sampling on hand-made distributions: greedy, temperature, top-k,
 * top-p (with boundary and tie cases), seeded streams, empirical frequencies, padded logits
 * never drawn, invalid configurations rejected. */
#include "infer/sample.h"
#include "test.h"
#include <math.h>
#include <string.h>



static ssmlm_sampler_config cfg(double t, int64_t k, double p) {
    ssmlm_sampler_config c;
    ssmlm_sampler_config_defaults(&c);
    c.temperature = t;
    c.top_k = k;
    c.top_p = p;
    c.seed = 1234;
    return c;
}

/* Kept candidates of logits[n] (vocab = n) under c: ids and probs into the arrays. */
static int64_t kept(ssmlm_sampler_config c, const double *logits, int64_t n, int64_t *ids, double *probs) {
    ssmlm_sampler s;
    const ssmlm_candidate *cand;
    int64_t k = -1;
    CHECK_OK(ssmlm_sampler_init(&s, &c, n));
    CHECK_OK(ssmlm_sampler_candidates(&s, logits, n, &cand, &k));
    for (int64_t i = 0; i < k; i++) {
        ids[i] = cand[i].id;
        probs[i] = cand[i].prob;
    }
    ssmlm_sampler_free(&s);
    return k;
}

static int same_ids(const int64_t *got, int64_t n_got, const int64_t *want, int64_t n_want) {
    if (n_got != n_want) return 0;
    for (int64_t i = 0; i < n_got; i++)
        if (got[i] != want[i]) return 0;
    return 1;
}

/* Top-p on p = {0.5, 0.25, 0.125, 0.125} (as log-probabilities) keeps exactly `want`. */
static void check_top_p(const double *p, double top_p, const int64_t *want, int64_t n_want) {
    double l[4], probs[4];
    int64_t ids[4];
    for (int i = 0; i < 4; i++) l[i] = log(p[i]);
    int64_t k = kept(cfg(1, 0, top_p), l, 4, ids, probs);
    CHECK(same_ids(ids, k, want, n_want), "top_p %g keeps %lld ids (first %lld), want %lld", top_p, (long long)k,
          (long long)ids[0], (long long)n_want);
    double mass = 0;
    for (int64_t i = 0; i < n_want; i++) mass += p[want[i]];
    for (int64_t i = 0; i < k && k == n_want; i++)
        CHECK(fabs(probs[i] - p[ids[i]] / mass) < 1e-12, "top_p %g renormalized prob of %lld", top_p, (long long)ids[i]);
}

int main(void) {
    double probs[16];
    int64_t ids[16];

    /* greedy: argmax, lowest index on ties, no randomness */
    {
        double l[5] = {1, 3, -2, 3, 2};
        int64_t k = kept(cfg(0, 0, 1), l, 5, ids, probs);
        CHECK(k == 1 && ids[0] == 1 && probs[0] == 1, "greedy keeps the first argmax: %lld %lld", (long long)k, (long long)ids[0]);
        ssmlm_sampler s;
        ssmlm_sampler_config c = cfg(0, 0, 1);
        CHECK_OK(ssmlm_sampler_init(&s, &c, 5));
        ssmlm_rng r, r0;
        ssmlm_sampler_rng(&r, 1, 0);
        r0 = r;
        int32_t tok = -1;
        for (int i = 0; i < 10; i++) CHECK_OK(ssmlm_sampler_draw(&s, &r, l, 5, &tok));
        CHECK(tok == 1 && memcmp(&r, &r0, sizeof r) == 0, "greedy draws %d and leaves the RNG alone", tok);
        ssmlm_sampler_free(&s);
    }

    /* temperature: p_i proportional to exp(l_i / T) */
    {
        double l[3] = {0, log(2.0), log(4.0)};
        const double temps[3] = {1, 0.5, 2};
        const double want[3][3] = {{1 / 7., 2 / 7., 4 / 7.}, {1 / 21., 4 / 21., 16 / 21.}, {0, 0, 0}};
        for (int t = 0; t < 3; t++) {
            double w[3];
            if (t == 2) {
                double z = 1 + sqrt(2.0) + 2;
                w[0] = 1 / z, w[1] = sqrt(2.0) / z, w[2] = 2 / z;
            } else {
                memcpy(w, want[t], sizeof w);
            }
            int64_t k = kept(cfg(temps[t], 0, 1), l, 3, ids, probs);
            CHECK(k == 3 && ids[0] == 2 && ids[1] == 1 && ids[2] == 0, "T=%g: all kept, most probable first", temps[t]);
            for (int i = 0; i < 3 && k == 3; i++)
                CHECK(fabs(probs[i] - w[ids[i]]) < 1e-12, "T=%g: p[%lld] = %.15f, want %.15f", temps[t], (long long)ids[i],
                      probs[i], w[ids[i]]);
        }
    }

    /* top-k keeps exactly the k largest (ties by lower index), renormalized */
    {
        double l[10] = {0.3, -1, 2.5, 0.9, 2.5, -3, 1.7, 0.0, 2.4, 1.0};
        int64_t k = kept(cfg(1, 3, 1), l, 10, ids, probs);
        int64_t want[3] = {2, 4, 8};
        CHECK(same_ids(ids, k, want, 3), "top-3: %lld ids", (long long)k);
        double z = 2 * exp(2.5) + exp(2.4);
        CHECK(k == 3 && fabs(probs[0] - exp(2.5) / z) < 1e-12 && fabs(probs[2] - exp(2.4) / z) < 1e-12, "top-3 probs");
        double t[5] = {5, 1, 5, 5, 0};
        int64_t want2[2] = {0, 2};
        k = kept(cfg(1, 2, 1), t, 5, ids, probs);
        CHECK(same_ids(ids, k, want2, 2), "top-2 among three equal logits keeps the lowest ids");
        k = kept(cfg(1, 100, 1), t, 5, ids, probs);
        CHECK(k == 5, "top-k above the vocabulary keeps everything: %lld", (long long)k);
        k = kept(cfg(1, 1, 1), l, 10, ids, probs);
        CHECK(k == 1 && ids[0] == 2 && probs[0] == 1, "top-1 is greedy");
    }

    /* top-p: the shortest prefix whose mass reaches top_p */
    {
        const double p[4] = {0.5, 0.25, 0.125, 0.125};
        const int64_t a[1] = {0}, ab[2] = {0, 1}, abc[3] = {0, 1, 2}, all[4] = {0, 1, 2, 3};
        check_top_p(p, 0.3, a, 1);
        check_top_p(p, 0.5, a, 1); /* exactly reaches at the boundary */
        check_top_p(p, 0.5001, ab, 2);
        check_top_p(p, 0.75, ab, 2);
        check_top_p(p, 0.76, abc, 3);
        check_top_p(p, 0.875, abc, 3); /* tie at the boundary: the lower index is kept */
        check_top_p(p, 0.9, all, 4);
        check_top_p(p, 1.0, all, 4);
        const double q[4] = {0.125, 0.25, 0.125, 0.5};
        const int64_t qa[3] = {3, 1, 0};
        check_top_p(q, 0.8, qa, 3);
        /* top-k then top-p on the renormalized top-k: {0.5, 0.25} -> {2/3, 1/3}; 0.6 keeps one */
        double l[4];
        for (int i = 0; i < 4; i++) l[i] = log(p[i]);
        int64_t k = kept(cfg(1, 2, 0.6), l, 4, ids, probs);
        CHECK(k == 1 && ids[0] == 0, "top-k 2 then top-p 0.6 keeps one: %lld", (long long)k);
        k = kept(cfg(1, 2, 0.7), l, 4, ids, probs);
        CHECK(k == 2 && fabs(probs[1] - 1 / 3.) < 1e-12, "top-k 2 then top-p 0.7 keeps two");
    }

    /* seeded streams: same (seed, index) -> same draws; another index -> other draws */
    {
        double l[6] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
        ssmlm_sampler s;
        ssmlm_sampler_config c = cfg(1, 0, 1);
        CHECK_OK(ssmlm_sampler_init(&s, &c, 6));
        int32_t a[100], b[100], d[100];
        ssmlm_rng ra, rb, rd;
        ssmlm_sampler_rng(&ra, 7, 3);
        ssmlm_sampler_rng(&rb, 7, 3);
        ssmlm_sampler_rng(&rd, 7, 4);
        int differ = 0;
        for (int i = 0; i < 100; i++) {
            CHECK_OK(ssmlm_sampler_draw(&s, &ra, l, 6, &a[i]));
            CHECK_OK(ssmlm_sampler_draw(&s, &rb, l, 6, &b[i]));
            CHECK_OK(ssmlm_sampler_draw(&s, &rd, l, 6, &d[i]));
            differ += a[i] != d[i];
        }
        CHECK(memcmp(a, b, sizeof a) == 0, "same seed and index reproduce the draws");
        CHECK(differ > 20, "another sequence index gives another stream (%d of 100 differ)", differ);
        ssmlm_sampler_free(&s);
    }

    /* empirical frequencies of 20000 draws within 5 sigma; padded logits never drawn */
    {
        const double p[5] = {0.5, 0.25, 0.125, 0.0625, 0.0625};
        double l[8];
        for (int i = 0; i < 5; i++) l[i] = log(p[i]);
        for (int i = 5; i < 8; i++) l[i] = 50; /* padding beyond the real vocabulary of 5 */
        const int N = 20000;
        struct { int64_t k; double want[5]; } cases[2] = {
            {0, {0.5, 0.25, 0.125, 0.0625, 0.0625}},
            {3, {4 / 7., 2 / 7., 1 / 7., 0, 0}},
        };
        for (int cs = 0; cs < 2; cs++) {
            ssmlm_sampler s;
            ssmlm_sampler_config c = cfg(1, cases[cs].k, 1);
            CHECK_OK(ssmlm_sampler_init(&s, &c, 5));
            ssmlm_rng r;
            ssmlm_sampler_rng(&r, 99, 0);
            int count[8] = {0};
            for (int i = 0; i < N; i++) {
                int32_t tok = -1;
                CHECK_OK(ssmlm_sampler_draw(&s, &r, l, 8, &tok));
                if (tok >= 0 && tok < 8) count[tok]++;
            }
            for (int i = 0; i < 5; i++) {
                double w = cases[cs].want[i], sigma = sqrt(w * (1 - w) / N), f = (double)count[i] / N;
                CHECK(fabs(f - w) <= 5 * sigma + (w == 0 ? 0 : 1e-12), "top_k %lld: token %d frequency %.4f, p %.4f",
                      (long long)cases[cs].k, i, f, w);
            }
            CHECK(count[5] + count[6] + count[7] == 0, "padded entries drawn %d times", count[5] + count[6] + count[7]);
            int32_t tok = -1;
            ssmlm_sampler_config g = cfg(0, 0, 1);
            ssmlm_sampler_free(&s);
            CHECK_OK(ssmlm_sampler_init(&s, &g, 5));
            CHECK_OK(ssmlm_sampler_draw(&s, &r, l, 8, &tok));
            CHECK(tok == 0, "greedy ignores the padding: %d", tok);
            ssmlm_sampler_free(&s);
        }
    }

    /* invalid configurations and rows */
    {
        const ssmlm_sampler_config bad[6] = {cfg(-1, 0, 1), cfg(NAN, 0, 1), cfg(INFINITY, 0, 1),
                                             cfg(1, -2, 1), cfg(1, 0, 0), cfg(1, 0, 1.5)};
        for (int i = 0; i < 6; i++) {
            ssmlm_sampler s;
            ssmlm_status st = ssmlm_sampler_init(&s, &bad[i], 4);
            CHECK(st == SSMLM_ERR_INVALID && strlen(ssmlm_last_hint()) > 0, "bad config %d rejected: %s", i, ssmlm_last_error());
            ssmlm_sampler_free(&s);
        }
        CHECK(ssmlm_sampler_config_check(&bad[4]) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "top-p"),
              "top-p named: %s", ssmlm_last_error());
        ssmlm_sampler s;
        ssmlm_sampler_config c = cfg(1, 0, 1);
        CHECK_OK(ssmlm_sampler_init(&s, &c, 3));
        ssmlm_rng r;
        ssmlm_sampler_rng(&r, 0, 0);
        int32_t tok;
        double nan_row[3] = {0, NAN, 1}, ninf[3] = {-INFINITY, -INFINITY, -INFINITY};
        CHECK(ssmlm_sampler_draw(&s, &r, nan_row, 3, &tok) == SSMLM_ERR_NUMERIC && strstr(ssmlm_last_error(), "token 1"),
              "NaN logit named: %s", ssmlm_last_error());
        CHECK(ssmlm_sampler_draw(&s, &r, ninf, 3, &tok) == SSMLM_ERR_NUMERIC, "all -inf rejected");
        CHECK(ssmlm_sampler_draw(&s, &r, ninf, 2, &tok) == SSMLM_ERR_INVALID, "short row rejected");
        double some_inf[3] = {-INFINITY, 0, -INFINITY};
        for (int i = 0; i < 50; i++) {
            CHECK_OK(ssmlm_sampler_draw(&s, &r, some_inf, 3, &tok));
            CHECK(tok == 1, "-inf logits are never drawn (%d)", tok);
        }
        ssmlm_sampler_free(&s);
    }
    TEST_END();
}
