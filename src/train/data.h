/* data.h — training data: corpora of documents (Megatron indexed datasets, raw token files,
 * byte-tokenized text, synthetic tasks) and the packing batcher that cuts them into training
 * rows with shifted labels, loss masks and per-position document numbers.
 *
 * A corpus (ssmlm_docs) is an ordered list of documents of token ids.  Tokens are stored in
 * their file's dtype (a .bin or raw token file is memory-mapped) and converted to int32 on
 * read; a stored value that int32 cannot hold (negative beyond int32, above INT32_MAX, NaN,
 * non-integer floats truncate toward zero) reads as -1, which ssmlm_docs_check_vocab reports.
 *
 * Packing (ssmlm_batcher): the documents of one split are concatenated in a seeded shuffled
 * order, a new permutation per epoch, and the stream is cut into rows of T+1 tokens with
 * stride T (consecutive rows share one token, so every token after the first is a label
 * exactly once):
 *     ids[t]    = row[t]                                t = 0..T-1
 *     labels[t] = row[t+1], or -1 if that token is masked out of the loss
 *     seg[t]    = number of document starts in row[1..t] (0 at the row start)
 * A document that ends with its EOD therefore switches seg right after the EOD.  The stream
 * wraps to the next epoch (reshuffled) when the split's documents are used up; a row may
 * span the wrap.  Everything is a pure function of (corpus, T, seed, val_fraction, split,
 * position), so a run resumes exactly from ssmlm_batcher_tell / ssmlm_batcher_seek.
 *
 * Data parallelism: every rank creates the same batcher (same seed) and calls
 * ssmlm_batcher_next_shard(b, rows, rank, world, ...): the global batch is world x rows
 * consecutive rows, rank r takes rows [r*rows, (r+1)*rows) of it, and every rank advances past
 * the whole global batch, so all ranks hold the same position (one checkpoint serves all).
 */
#ifndef SSMLM_TRAIN_DATA_H
#define SSMLM_TRAIN_DATA_H

#include "base/base.h"
#include "train/synth.h"

/* Byte-level tokenizer: token = byte value 0..255, 256 ends each document. */
#define SSMLM_BYTE_EOD 256
#define SSMLM_BYTE_VOCAB 257

/* Megatron dtype codes (formats.md §6.1). */
typedef enum {
    SSMLM_MMID_U8 = 1,
    SSMLM_MMID_I8 = 2,
    SSMLM_MMID_I16 = 3,
    SSMLM_MMID_I32 = 4,
    SSMLM_MMID_I64 = 5,
    SSMLM_MMID_F64 = 6,
    SSMLM_MMID_F32 = 7,
    SSMLM_MMID_U16 = 8
} ssmlm_mmid_dtype;

/* ---- corpora ---------------------------------------------------------------------------- */
typedef struct ssmlm_docs ssmlm_docs;

/* Megatron-LM indexed dataset prefix.idx + prefix.bin (formats.md §6.1).  One document is the
 * concatenation of the sequences between two document_indices entries.  Every header field,
 * count and offset is validated against the file sizes: the pointers must be the running sum
 * of length x itemsize (the layout Megatron writes) and end exactly at the size of the .bin.
 * The .idx may carry the multimodal sequence_modes array (ignored).  The .bin is mmap'd. */
ssmlm_status ssmlm_docs_open_megatron(ssmlm_docs **out, const char *prefix);
/* Raw little-endian uint16 (bits 16) or uint32 (bits 32) tokens, no header.  With
 * eod_id >= 0 each eod token ends a document and belongs to it (tokens after the last eod
 * form a final document without one); with eod_id < 0 the file is one document. */
ssmlm_status ssmlm_docs_open_tokens(ssmlm_docs **out, const char *path, int bits, int64_t eod_id);
/* Text through the byte tokenizer.  doc_sep NULL or "": the whole file is one document;
 * otherwise the file is split at each occurrence of doc_sep (e.g. "\n\n"), the separator
 * belonging to no document.  Empty pieces are dropped; every document gets SSMLM_BYTE_EOD
 * appended. */
ssmlm_status ssmlm_docs_open_text(ssmlm_docs **out, const char *path, const char *doc_sep);
/* Synthetic task documents (synth.h documents the formats); each carries a loss mask. */
ssmlm_status ssmlm_docs_synthetic(ssmlm_docs **out, const ssmlm_synth_config *cfg);
/* A corpus from token arrays in memory (copied): n documents, document i is
 * tokens[starts[i] .. starts[i+1]); mask (may be NULL) is parallel to tokens. */
ssmlm_status ssmlm_docs_from_arrays(ssmlm_docs **out, int64_t n, const int64_t *starts,
                                    const int32_t *tokens, const uint8_t *mask);

int64_t ssmlm_docs_count(const ssmlm_docs *d);
int64_t ssmlm_docs_length(const ssmlm_docs *d, int64_t i);
int64_t ssmlm_docs_total_tokens(const ssmlm_docs *d);
/* Copies tokens [off, off+n) of document i into dst as int32 (bounds are asserted). */
void ssmlm_docs_read(const ssmlm_docs *d, int64_t i, int64_t off, int64_t n, int32_t *dst);
/* Per-token loss mask of document i (1 = the token is scored as a target), or NULL when
 * every token is scored. */
const uint8_t *ssmlm_docs_mask(const ssmlm_docs *d, int64_t i);
/* Largest token id (as read), -1 for an empty corpus.  The first call scans the tokens
 * (O(total)); the result is cached, so the first call must not race with another. */
int64_t ssmlm_docs_max_token(const ssmlm_docs *d);
/* Checks that every token is in [0, vocab); the error names the document, the position and
 * the value of the first one that is not. */
ssmlm_status ssmlm_docs_check_vocab(const ssmlm_docs *d, int64_t vocab);
void ssmlm_docs_free(ssmlm_docs *d);

/* Writes prefix.bin and prefix.idx (each temp file + rename, the .bin first) with
 * token_bytes 1 (uint8), 2 (uint16), 4 (int32) or 8 (int64); every token must fit the type.
 * One sequence per document (a document longer than INT32_MAX tokens is split into several
 * sequences of the same document).  Masks are not stored. */
ssmlm_status ssmlm_docs_write_megatron(const ssmlm_docs *d, const char *prefix, int token_bytes);

/* ---- packing ---------------------------------------------------------------------------- */
typedef struct ssmlm_batcher ssmlm_batcher;
/* The resume position: the next row starts at token `offset` of the `doc`-th document of the
 * shuffled order of `epoch`.  Plain data: store it as 24 bytes. */
typedef struct ssmlm_batcher_pos {
    uint64_t epoch;
    int64_t doc;
    int64_t offset;
} ssmlm_batcher_pos;

/* A batcher over one split of d (d must outlive it).  The split is by document: a
 * seeded permutation of all documents puts round(val_fraction x n) of them (at least 1 when
 * val_fraction > 0, and at least 1 left for training) in validation (split 1), the rest in
 * training (split 0).  val_fraction in [0, 1).  The split must hold at least one token. */
ssmlm_status ssmlm_batcher_create(ssmlm_batcher **out, const ssmlm_docs *d, int64_t T, uint64_t seed,
                                  double val_fraction, int split);
/* rows x T ids, labels and seg (row-major [rows, T]); any of labels/seg may be NULL. */
ssmlm_status ssmlm_batcher_next(ssmlm_batcher *b, int64_t rows, int32_t *ids, int32_t *labels, int32_t *seg);
/* Advances past rows rows without producing them. */
ssmlm_status ssmlm_batcher_skip(ssmlm_batcher *b, int64_t rows);
/* Rank `rank` of `world`: rows x T of a global batch of world x rows rows (see the header). */
ssmlm_status ssmlm_batcher_next_shard(ssmlm_batcher *b, int64_t rows, int rank, int world,
                                      int32_t *ids, int32_t *labels, int32_t *seg);
/* The position of the next row (always at a token: a position at the end of a document is
 * normalized to the start of the next non-empty one, possibly in the next epoch). */
ssmlm_batcher_pos ssmlm_batcher_tell(const ssmlm_batcher *b);
/* Moves to a position from tell (validated against this batcher's documents). */
ssmlm_status ssmlm_batcher_seek(ssmlm_batcher *b, ssmlm_batcher_pos pos);
/* Number of documents and of tokens in this batcher's split. */
int64_t ssmlm_batcher_docs(const ssmlm_batcher *b);
int64_t ssmlm_batcher_tokens(const ssmlm_batcher *b);
/* Corpus index of the i-th document of the split (ascending corpus order). */
int64_t ssmlm_batcher_doc_id(const ssmlm_batcher *b, int64_t i);
void ssmlm_batcher_free(ssmlm_batcher *b);

#endif
