/* Batched hashing for the por-mst-v1 build engine (por/core/mst_build.py).
 *
 * SHA-256 comes from OpenSSL's libcrypto (SHA256_Init/Update/Final, which use the CPU's
 * SHA extensions or AVX2 where present); BLAKE2b-256 for the salts is RFC 7693 written
 * out below, because libcrypto 3.0 only offers keyed BLAKE2b through EVP_MAC, whose
 * per-call allocation costs more than the hash. Every function takes contiguous buffers
 * (bytes, numpy arrays), checks their sizes with the GIL held, then releases the GIL for
 * the loop, so a thread pool hashes on every core.
 *
 * The preimages are exactly por/core/mst.py's (docs/sumtree.md §1):
 *   leaf = H(0x00 || salt || H(account) || u256(balance))     97 bytes
 *   node = H(0x01 || L.hash || u256(L.sum) || R.hash || u256(R.sum))  129 bytes
 * Sums are 128-bit (two little-endian uint64 words), below 2^127; a pair whose sum reaches
 * 2^127 makes node_level return False and the caller raises. tests/core/test_mst_native.py
 * compares every function with the pure-Python path (identical roots and hashes).
 *
 * Build: setup.py (setuptools ext_modules, -lcrypto). The module is optional: without it
 * the engine hashes with hashlib (por.core.mst_build.NATIVE tells which path runs).
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init/Update/Final: the low-level calls are the cheapest */
#include <Python.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define HASH 32
#define REC 48 /* a stored level record: hash (32), sum low word (8, LE), sum high word (8, LE) */

static inline uint64_t ld64le(const uint8_t *p) {
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* native-endian words: numpy uint64 arrays (offsets, balances, sort keys) */
static inline uint64_t ld64n(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void st64n(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static inline void st64le(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline void st64be(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

/* SHA-256 through the low-level calls: OpenSSL 3's one-shot SHA256() goes through
 * EVP_Q_digest, which fetches the algorithm on every call (~370 ns, 8 times a block). */
static inline void sha256(const uint8_t *data, size_t len, uint8_t *out) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, data, len);
    SHA256_Final(out, &c);
}

static inline uint64_t be32_at(const uint8_t *p) {
    return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | (uint64_t)p[3];
}

/* ---- argument helpers (GIL held) ---------------------------------------------------- */

static int get_buf(PyObject *obj, Py_buffer *view, int writable, const char *name) {
    if (PyObject_GetBuffer(obj, view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "%s: a C-contiguous %sbuffer is required", name,
                     writable ? "writable " : "");
        return -1;
    }
    return 0;
}

static int want_len(Py_buffer *view, Py_ssize_t len, const char *name) {
    if (view->len < len) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, at least %zd needed", name, view->len,
                     len);
        return -1;
    }
    return 0;
}

/* ---- sha256_rows(src, width, out) ----------------------------------------------------- */

static PyObject *sha256_rows(PyObject *self, PyObject *args) {
    PyObject *src_o, *out_o;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "OnO", &src_o, &width, &out_o)) return NULL;
    if (width <= 0) return PyErr_Format(PyExc_ValueError, "width must be positive");
    Py_buffer src, out;
    if (get_buf(src_o, &src, 0, "src") < 0) return NULL;
    if (get_buf(out_o, &out, 1, "out") < 0) {
        PyBuffer_Release(&src);
        return NULL;
    }
    Py_ssize_t m = src.len / width;
    if (src.len % width || want_len(&out, m * HASH, "out") < 0) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "src length %zd is not a multiple of %zd", src.len,
                         width);
        PyBuffer_Release(&src);
        PyBuffer_Release(&out);
        return NULL;
    }
    const uint8_t *s = src.buf;
    uint8_t *o = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < m; i++) sha256(s + i * width, (size_t)width, o + i * HASH);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* ---- leaf_pass(blob, offsets, salts, lo, hi, start, stop, leaves, leaf_keys, acct_keys,
 *                base=0) -------------------------------------------------------------------
 * For rows i in [start, stop): a = H(account i), leaves[i] = H(0x00 || salt i || a ||
 * u256(hi i, lo i)), leaf_keys[i] = be32(leaves[i][:4]) << 32 | (base + i), acct_keys[i] =
 * be32(a[:4]) << 32 | (base + i). `hi` None: every balance fits the low word. Account i is
 * blob[offsets[i] : offsets[i+1] - 1] (each id is followed by a newline); the ids were
 * validated before. `base`: the first row's index in the whole tree, when the rows are one
 * chain's column of several (the caller passes views of the outputs from that row). */

static PyObject *leaf_pass(PyObject *self, PyObject *args) {
    PyObject *blob_o, *off_o, *salts_o, *lo_o, *hi_o, *leaves_o, *lk_o, *ak_o;
    Py_ssize_t start, stop, base = 0;
    if (!PyArg_ParseTuple(args, "OOOOOnnOOO|n", &blob_o, &off_o, &salts_o, &lo_o, &hi_o, &start,
                          &stop, &leaves_o, &lk_o, &ak_o, &base))
        return NULL;
    if (base < 0 || base > 0xFFFFFFFFLL) {
        PyErr_Format(PyExc_ValueError, "base %zd is not a 32-bit row index", base);
        return NULL;
    }
    Py_buffer b[8];
    PyObject *objs[8] = {blob_o, off_o, salts_o, lo_o, hi_o, leaves_o, lk_o, ak_o};
    const char *names[8] = {"blob", "offsets", "salts", "lo", "hi", "leaves", "leaf_keys",
                            "acct_keys"};
    int writable[8] = {0, 0, 0, 0, 0, 1, 1, 1};
    int got = 0, ok = 0;
    for (; got < 8; got++) {
        if (got == 4 && hi_o == Py_None) {
            b[4].buf = NULL;
            b[4].obj = NULL;
            b[4].len = 0;
            continue;
        }
        if (get_buf(objs[got], &b[got], writable[got], names[got]) < 0) goto done;
    }
    if (start < 0 || stop < start) {
        PyErr_Format(PyExc_ValueError, "bad row range [%zd, %zd)", start, stop);
        goto done;
    }
    if (want_len(&b[1], 8 * (stop + 1), "offsets") < 0 || want_len(&b[2], HASH * stop, "salts") < 0 ||
        want_len(&b[3], 8 * stop, "lo") < 0 || (b[4].buf && want_len(&b[4], 8 * stop, "hi") < 0) ||
        want_len(&b[5], HASH * stop, "leaves") < 0 || want_len(&b[6], 8 * stop, "leaf_keys") < 0 ||
        want_len(&b[7], 8 * stop, "acct_keys") < 0)
        goto done;
    const uint8_t *blob = b[0].buf, *offs = b[1].buf, *salts = b[2].buf, *lo = b[3].buf,
                  *hi = b[4].buf;
    uint8_t *leaves = b[5].buf, *lk = b[6].buf, *ak = b[7].buf;
    /* the offsets must lie inside the blob and leave room for each id's newline */
    for (Py_ssize_t i = start; i < stop; i++) {
        uint64_t s = ld64n(offs + 8 * i), e = ld64n(offs + 8 * (i + 1));
        if (e <= s || e > (uint64_t)b[0].len) {
            PyErr_Format(PyExc_ValueError, "offsets[%zd..%zd] = %llu..%llu outside the blob", i,
                         i + 1, (unsigned long long)s, (unsigned long long)e);
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    uint8_t pre[97];
    memset(pre, 0, sizeof pre); /* tag 0x00 and the u256 high zero bytes stay zero */
    for (Py_ssize_t i = start; i < stop; i++) {
        uint64_t s = ld64n(offs + 8 * i), e = ld64n(offs + 8 * (i + 1));
        uint8_t *a = pre + 33;
        sha256(blob + s, (size_t)(e - 1 - s), a);
        memcpy(pre + 1, salts + HASH * i, HASH);
        st64be(pre + 81, hi ? ld64n(hi + 8 * i) : 0);
        st64be(pre + 89, ld64n(lo + 8 * i));
        uint8_t *leaf = leaves + HASH * i;
        sha256(pre, sizeof pre, leaf);
        st64n(lk + 8 * i, be32_at(leaf) << 32 | (uint64_t)(base + i));
        st64n(ak + 8 * i, be32_at(a) << 32 | (uint64_t)(base + i));
    }
    Py_END_ALLOW_THREADS
    ok = 1;
done:
    for (int j = 0; j < got; j++)
        if (b[j].obj) PyBuffer_Release(&b[j]);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* ---- gather_records(leaves, lo, hi, idx, out) -------------------------------------------
 * out[k] = record(leaves[idx[k]], lo[idx[k]], hi[idx[k]]) for idx a uint32 array. `lo` and
 * `hi` are uint64 arrays, or tuples of them read one after another as one column (a tree
 * over several chains' columns, never joined); `hi` None: the high words are zero. */

struct words {
    Py_ssize_t nparts, got;
    Py_buffer *bufs;
    Py_ssize_t *ends; /* ends[p]: rows in parts 0..p */
};

static void words_release(struct words *w) {
    for (Py_ssize_t p = 0; p < w->got; p++) PyBuffer_Release(&w->bufs[p]);
    PyMem_Free(w->bufs);
    PyMem_Free(w->ends);
    w->bufs = NULL;
    w->ends = NULL;
    w->got = w->nparts = 0;
}

static int words_get(PyObject *obj, struct words *w, const char *name) {
    int tuple = PyTuple_Check(obj);
    w->nparts = tuple ? PyTuple_GET_SIZE(obj) : 1;
    w->got = 0;
    w->bufs = PyMem_Calloc(w->nparts > 0 ? w->nparts : 1, sizeof *w->bufs);
    w->ends = PyMem_Calloc(w->nparts > 0 ? w->nparts : 1, sizeof *w->ends);
    if (w->bufs == NULL || w->ends == NULL) {
        PyErr_NoMemory();
        words_release(w);
        return -1;
    }
    Py_ssize_t rows = 0;
    for (; w->got < w->nparts; w->got++) {
        PyObject *item = tuple ? PyTuple_GET_ITEM(obj, w->got) : obj;
        if (get_buf(item, &w->bufs[w->got], 0, name) < 0) {
            words_release(w);
            return -1;
        }
        if (w->bufs[w->got].len % 8) {
            PyErr_Format(PyExc_ValueError, "%s: part %zd of %zd bytes is not uint64 words", name,
                         w->got, w->bufs[w->got].len);
            w->got++;
            words_release(w);
            return -1;
        }
        rows += w->bufs[w->got].len / 8;
        w->ends[w->got] = rows;
    }
    return 0;
}

static inline uint64_t words_at(const struct words *w, size_t j) {
    Py_ssize_t p = 0, before = 0;
    while ((Py_ssize_t)j >= w->ends[p]) before = w->ends[p++];
    return ld64n((const uint8_t *)w->bufs[p].buf + 8 * (j - (size_t)before));
}

static PyObject *gather_records(PyObject *self, PyObject *args) {
    PyObject *lv_o, *lo_o, *hi_o, *idx_o, *out_o;
    if (!PyArg_ParseTuple(args, "OOOOO", &lv_o, &lo_o, &hi_o, &idx_o, &out_o)) return NULL;
    Py_buffer lv, idx, out;
    struct words lo = {0}, hi = {0};
    int have_hi = hi_o != Py_None, ok = 0;
    if (get_buf(lv_o, &lv, 0, "leaves") < 0) return NULL;
    if (words_get(lo_o, &lo, "lo") < 0) goto r1;
    if (have_hi && words_get(hi_o, &hi, "hi") < 0) goto r2;
    if (get_buf(idx_o, &idx, 0, "idx") < 0) goto r3;
    if (get_buf(out_o, &out, 1, "out") < 0) goto r4;
    Py_ssize_t m = idx.len / 4, n = lv.len / HASH;
    if (want_len(&out, m * REC, "out") < 0) goto r5;
    if (lo.ends[lo.nparts - 1] < n || (have_hi && hi.ends[hi.nparts - 1] < n)) {
        PyErr_Format(PyExc_ValueError, "lo/hi: fewer than the %zd rows of the leaves", n);
        goto r5;
    }
    const uint8_t *ix = idx.buf;
    for (Py_ssize_t k = 0; k < m; k++) {
        uint32_t j;
        memcpy(&j, ix + 4 * k, 4);
        if ((Py_ssize_t)j >= n) {
            PyErr_Format(PyExc_IndexError, "idx[%zd] = %u is not below %zd", k, j, n);
            goto r5;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    const uint8_t *L = lv.buf;
    uint8_t *o = out.buf;
    if (lo.nparts == 1 && (!have_hi || hi.nparts == 1)) {
        const uint8_t *LO = lo.bufs[0].buf, *HI = have_hi ? hi.bufs[0].buf : NULL;
        for (Py_ssize_t k = 0; k < m; k++) {
            uint32_t j;
            memcpy(&j, ix + 4 * k, 4);
            memcpy(o + REC * k, L + HASH * (size_t)j, HASH);
            st64le(o + REC * k + 32, ld64n(LO + 8 * (size_t)j));
            st64le(o + REC * k + 40, HI ? ld64n(HI + 8 * (size_t)j) : 0);
        }
    } else {
        for (Py_ssize_t k = 0; k < m; k++) {
            uint32_t j;
            memcpy(&j, ix + 4 * k, 4);
            memcpy(o + REC * k, L + HASH * (size_t)j, HASH);
            st64le(o + REC * k + 32, words_at(&lo, j));
            st64le(o + REC * k + 40, have_hi ? words_at(&hi, j) : 0);
        }
    }
    Py_END_ALLOW_THREADS
    ok = 1;
r5:
    PyBuffer_Release(&out);
r4:
    PyBuffer_Release(&idx);
r3:
    if (have_hi) words_release(&hi);
r2:
    words_release(&lo);
r1:
    PyBuffer_Release(&lv);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* ---- bucket_records(leaves, lo, hi, first_row, bits, outs, narrow) ----------------------
 * A distributed build's partition split by bucket in one pass (por.core.mst_parts): row i's
 * record goes to the next free record of outs[b], b the top `bits` bits of its leaf hash
 * (bits <= 16). A PIECE record: leaf hash (32), balance low and high words (8 + 8, LE),
 * global input row first_row + i (8, LE); narrow (balances below 2^64, `hi` None, rows
 * below 2^32), a PIECE_LOW record: leaf hash (32), low word (8, LE), row (4, LE). `outs`
 * holds 2^bits writable buffers sized by the caller from the bucket counts; each must come
 * out exactly full. `hi` None: the high words are zero. */

#define PIECE_REC 56
#define PIECE_LOW_REC 44

static PyObject *bucket_records(PyObject *self, PyObject *args) {
    PyObject *lv_o, *lo_o, *hi_o, *outs_o;
    unsigned long long first_row;
    int bits, narrow = 0;
    if (!PyArg_ParseTuple(args, "OOOKiO|p", &lv_o, &lo_o, &hi_o, &first_row, &bits, &outs_o,
                          &narrow))
        return NULL;
    if (bits < 0 || bits > 16) return PyErr_Format(PyExc_ValueError, "bits %d not in [0, 16]", bits);
    if (narrow && hi_o != Py_None)
        return PyErr_Format(PyExc_ValueError, "narrow records hold no high words (hi: None)");
    const Py_ssize_t size = narrow ? PIECE_LOW_REC : PIECE_REC;
    if (!PyTuple_Check(outs_o) || PyTuple_GET_SIZE(outs_o) != ((Py_ssize_t)1 << bits))
        return PyErr_Format(PyExc_ValueError, "outs: a tuple of 2^%d buffers is required", bits);
    Py_ssize_t nb = (Py_ssize_t)1 << bits, got = 0;
    int have_hi = hi_o != Py_None, ok = 0;
    Py_buffer lv, lo, hi, *outs = PyMem_Calloc((size_t)nb, sizeof *outs);
    uint8_t **at = PyMem_Calloc((size_t)nb, sizeof *at), **end = PyMem_Calloc((size_t)nb, sizeof *end);
    if (outs == NULL || at == NULL || end == NULL) {
        PyErr_NoMemory();
        goto r0;
    }
    if (get_buf(lv_o, &lv, 0, "leaves") < 0) goto r0;
    if (get_buf(lo_o, &lo, 0, "lo") < 0) goto r1;
    if (have_hi && get_buf(hi_o, &hi, 0, "hi") < 0) goto r2;
    Py_ssize_t m = lv.len / HASH, total = 0;
    if (lv.len % HASH || lo.len != 8 * m || (have_hi && hi.len != 8 * m)) {
        PyErr_Format(PyExc_ValueError, "leaves, lo and hi disagree on the rows (%zd)", m);
        goto r3;
    }
    if (first_row + (unsigned long long)m < first_row ||
        (narrow && first_row + (unsigned long long)m > (unsigned long long)UINT32_MAX + 1)) {
        PyErr_Format(PyExc_ValueError, "rows from %llu: too large for these records", first_row);
        goto r3;
    }
    for (; got < nb; got++) {
        if (get_buf(PyTuple_GET_ITEM(outs_o, got), &outs[got], 1, "outs") < 0) goto r4;
        if (outs[got].len % size) {
            PyErr_Format(PyExc_ValueError, "outs[%zd]: %zd bytes are not whole records", got,
                         outs[got].len);
            got++;
            goto r4;
        }
        at[got] = outs[got].buf;
        end[got] = at[got] + outs[got].len;
        total += outs[got].len / size;
    }
    if (total != m) {
        PyErr_Format(PyExc_ValueError, "outs hold %zd records for %zd rows", total, m);
        goto r4;
    }
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    const uint8_t *L = lv.buf, *LO = lo.buf, *HI = have_hi ? hi.buf : NULL;
    for (Py_ssize_t i = 0; i < m; i++) {
        const uint8_t *h = L + (size_t)HASH * i;
        unsigned b = bits ? (unsigned)(h[0] << 8 | h[1]) >> (16 - bits) : 0;
        uint8_t *o = at[b];
        if (o == end[b]) {  /* the counts the buffers were sized by are not these leaves' */
            bad = 1;
            break;
        }
        memcpy(o, h, HASH);
        st64le(o + 32, ld64n(LO + 8 * (size_t)i));
        if (narrow) {
            uint32_t row = (uint32_t)(first_row + (uint64_t)i);
            for (int k = 0; k < 4; k++) o[40 + k] = (uint8_t)(row >> (8 * k));
        } else {
            st64le(o + 40, HI ? ld64n(HI + 8 * (size_t)i) : 0);
            st64le(o + 48, first_row + (uint64_t)i);
        }
        at[b] = o + size;
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "a bucket's buffer is smaller than its leaves");
        goto r4;
    }
    ok = 1;
r4:
    for (Py_ssize_t k = 0; k < got; k++) PyBuffer_Release(&outs[k]);
r3:
    if (have_hi) PyBuffer_Release(&hi);
r2:
    PyBuffer_Release(&lo);
r1:
    PyBuffer_Release(&lv);
r0:
    PyMem_Free(outs);
    PyMem_Free(at);
    PyMem_Free(end);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* ---- gather_pieces(records, order, level0, rows, narrow=False) --------------------------
 * A bucket's leaves in leaf order from its records: level0[k] = the stored level record
 * (hash, low word, high word) of records[order[k]] and rows[k] its input row, as uint32.
 * PIECE records (56 bytes: the first 48 are that record), or narrow PIECE_LOW records (44
 * bytes: hash and low word; the high word is zero). `order` holds int64 indices. One pass
 * instead of a take of whole records and two copies. */

static PyObject *gather_pieces(PyObject *self, PyObject *args) {
    PyObject *rec_o, *ord_o, *lv_o, *rows_o;
    int narrow = 0;
    if (!PyArg_ParseTuple(args, "OOOO|p", &rec_o, &ord_o, &lv_o, &rows_o, &narrow)) return NULL;
    Py_buffer rec, ord, lv, rows;
    int ok = 0;
    const Py_ssize_t size = narrow ? PIECE_LOW_REC : PIECE_REC;
    if (get_buf(rec_o, &rec, 0, "records") < 0) return NULL;
    if (get_buf(ord_o, &ord, 0, "order") < 0) goto g1;
    if (get_buf(lv_o, &lv, 1, "level0") < 0) goto g2;
    if (get_buf(rows_o, &rows, 1, "rows") < 0) goto g3;
    Py_ssize_t n = rec.len / size, m = ord.len / 8;
    if (rec.len % size || ord.len % 8) {
        PyErr_SetString(PyExc_ValueError, "records or order: not whole items");
        goto g4;
    }
    if (want_len(&lv, m * REC, "level0") < 0 || want_len(&rows, m * 4, "rows") < 0) goto g4;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    const uint8_t *R = rec.buf, *O = ord.buf;
    uint8_t *L = lv.buf, *W = rows.buf;
    for (Py_ssize_t k = 0; k < m; k++) {
        uint64_t j = ld64n(O + 8 * (size_t)k);
        if (j >= (uint64_t)n) {
            bad = 1;
            break;
        }
        const uint8_t *r = R + size * (size_t)j;
        uint8_t *l = L + REC * (size_t)k;
        uint64_t row;
        if (narrow) {
            row = (uint64_t)r[40] | (uint64_t)r[41] << 8 | (uint64_t)r[42] << 16 |
                  (uint64_t)r[43] << 24;
            memcpy(l, r, 40);
            memset(l + 40, 0, 8);
        } else {
            row = ld64le(r + 48);
            if (row > UINT32_MAX) {
                bad = 2;
                break;
            }
            memcpy(l, r, REC);
        }
        uint32_t r32 = (uint32_t)row;
        memcpy(W + 4 * (size_t)k, &r32, 4);
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, bad == 1 ? "order: an index past the records"
                                                   : "records: an input row of 2^32 or more");
        goto g4;
    }
    ok = 1;
g4:
    PyBuffer_Release(&rows);
g3:
    PyBuffer_Release(&lv);
g2:
    PyBuffer_Release(&ord);
g1:
    PyBuffer_Release(&rec);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* ---- node_level(src, dst) -> bool ------------------------------------------------------
 * One level up over stored-level records: dst[p] = node(src[2p], src[2p+1]) and, when the
 * level is odd, dst[last] = src[last] (RFC 9162 §2.1.1 shape: the odd node is carried up,
 * never duplicated). False when a sum reaches 2^127 (nothing else is checked: the caller's
 * exact total is below it). */

static PyObject *node_level(PyObject *self, PyObject *args) {
    PyObject *src_o, *dst_o;
    if (!PyArg_ParseTuple(args, "OO", &src_o, &dst_o)) return NULL;
    Py_buffer src, dst;
    if (get_buf(src_o, &src, 0, "src") < 0) return NULL;
    if (get_buf(dst_o, &dst, 1, "dst") < 0) {
        PyBuffer_Release(&src);
        return NULL;
    }
    Py_ssize_t m = src.len / REC;
    if (src.len % REC || dst.len != (m + 1) / 2 * REC) {
        PyErr_Format(PyExc_ValueError, "node_level: %zd source bytes, %zd destination bytes",
                     src.len, dst.len);
        PyBuffer_Release(&src);
        PyBuffer_Release(&dst);
        return NULL;
    }
    int overflow = 0;
    Py_BEGIN_ALLOW_THREADS
    const uint8_t *s = src.buf;
    uint8_t *d = dst.buf;
    uint8_t pre[129];
    memset(pre, 0, sizeof pre);
    pre[0] = 1;
    Py_ssize_t p = m / 2;
    for (Py_ssize_t i = 0; i < p; i++) {
        const uint8_t *l = s + 2 * i * REC, *r = l + REC;
        uint64_t llo = ld64le(l + 32), lhi = ld64le(l + 40), rlo = ld64le(r + 32),
                 rhi = ld64le(r + 40);
        memcpy(pre + 1, l, HASH);
        st64be(pre + 49, lhi);
        st64be(pre + 57, llo);
        memcpy(pre + 65, r, HASH);
        st64be(pre + 113, rhi);
        st64be(pre + 121, rlo);
        uint8_t *o = d + i * REC;
        sha256(pre, sizeof pre, o);
        uint64_t slo = llo + rlo;
        uint64_t shi = lhi + rhi + (slo < llo);
        if (shi >= (1ULL << 63) || shi < lhi) overflow = 1;
        st64le(o + 32, slo);
        st64le(o + 40, shi);
    }
    if (m & 1) memcpy(d + p * REC, s + (m - 1) * REC, REC);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return PyBool_FromLong(!overflow);
}

/* ---- BLAKE2b (RFC 7693) ----------------------------------------------------------------
 * One scalar compression per salt costs ~166 ns; the salts' messages (account ids of 1..128
 * bytes) are one final block each after the key block, whose state (`keyed`) is computed
 * once. So on x86-64 with GCC/Clang several salts are hashed at once, one message per
 * 64-bit lane: 8 with AVX-512F, 4 with AVX2. Those functions carry target() attributes,
 * the module keeps its portable flags, and the CPU is asked at run time
 * (__builtin_cpu_supports); elsewhere only the scalar path is compiled. Ids of more than
 * 128 bytes (and the empty message, which no column holds) take the scalar b2b_keyed32.
 * User CPU per salt, 1 thread, ids "eip155:1:0x" + 40 hex digits (51 bytes), median of
 * salts_bytes(key, [(blob, offsets)], 1, isa) runs (7 at 10^6, 3 at 10^7) on the 2-core
 * Xeon VM (avx512f), getrusage:
 *              scalar    AVX2 (4 lanes)   AVX-512 (8 lanes)
 *   10^6       180 ns    65 ns (2.8x)     37 ns (4.9x)
 *   10^7       179 ns    66 ns (2.7x)     36.5 ns (4.9x)
 * At 10^7 on 2 threads: scalar 1.84 s user / 0.95 s wall, AVX-512 0.35 s / 0.26 s.
 * AVX-512 time: ~80% the rounds (1277 instructions per 8 ids of <= 64 bytes), the rest
 * loading the ids and the offsets.
 */

static const uint64_t B2B_IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

static const uint8_t B2B_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

/* The twelve rounds written out for a G over v[16] and the message words m[16], scalar
 * words or vectors of lanes: with constant SIGMA indices the message words stay in
 * registers (a loop over r reads them through the table: ~1.6x slower). */
#define B2B_ROUND(G, r)                                          \
    do {                                                         \
        G(0, 4, 8, 12, m[B2B_SIGMA[r][0]], m[B2B_SIGMA[r][1]]);    \
        G(1, 5, 9, 13, m[B2B_SIGMA[r][2]], m[B2B_SIGMA[r][3]]);    \
        G(2, 6, 10, 14, m[B2B_SIGMA[r][4]], m[B2B_SIGMA[r][5]]);   \
        G(3, 7, 11, 15, m[B2B_SIGMA[r][6]], m[B2B_SIGMA[r][7]]);   \
        G(0, 5, 10, 15, m[B2B_SIGMA[r][8]], m[B2B_SIGMA[r][9]]);   \
        G(1, 6, 11, 12, m[B2B_SIGMA[r][10]], m[B2B_SIGMA[r][11]]); \
        G(2, 7, 8, 13, m[B2B_SIGMA[r][12]], m[B2B_SIGMA[r][13]]);  \
        G(3, 4, 9, 14, m[B2B_SIGMA[r][14]], m[B2B_SIGMA[r][15]]);  \
    } while (0)

#define B2B_ROUNDS(G)      \
    do {                   \
        B2B_ROUND(G, 0);   \
        B2B_ROUND(G, 1);   \
        B2B_ROUND(G, 2);   \
        B2B_ROUND(G, 3);   \
        B2B_ROUND(G, 4);   \
        B2B_ROUND(G, 5);   \
        B2B_ROUND(G, 6);   \
        B2B_ROUND(G, 7);   \
        B2B_ROUND(G, 8);   \
        B2B_ROUND(G, 9);   \
        B2B_ROUND(G, 10);  \
        B2B_ROUND(G, 11);  \
    } while (0)

static inline uint64_t rotr64(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

#define B2B_G(a, b, c, d, x, y)         \
    do {                                \
        v[a] = v[a] + v[b] + (x);       \
        v[d] = rotr64(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d];             \
        v[b] = rotr64(v[b] ^ v[c], 24); \
        v[a] = v[a] + v[b] + (y);       \
        v[d] = rotr64(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d];             \
        v[b] = rotr64(v[b] ^ v[c], 63); \
    } while (0)

static void b2b_compress(uint64_t h[8], const uint8_t block[128], uint64_t t, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = B2B_IV[i];
    }
    v[12] ^= t; /* messages here are far below 2^64 bytes: the high counter word stays 0 */
    if (last) v[14] = ~v[14];
    for (int i = 0; i < 16; i++) m[i] = ld64le(block + 8 * i);
    B2B_ROUNDS(B2B_G);
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* keyed BLAKE2b-256 of msg, given the state after the key block (32-byte key) */
static void b2b_keyed32(const uint64_t keyed[8], const uint64_t fresh[8], const uint8_t key[128],
                        const uint8_t *msg, size_t len, uint8_t out[32]) {
    uint64_t h[8];
    uint8_t block[128];
    if (len == 0) { /* the key block is the last block */
        memcpy(h, fresh, sizeof h);
        b2b_compress(h, key, 128, 1);
    } else {
        memcpy(h, keyed, sizeof h);
        uint64_t t = 128;
        while (len > 128) {
            t += 128;
            b2b_compress(h, msg, t, 0);
            msg += 128;
            len -= 128;
        }
        memset(block, 0, sizeof block);
        memcpy(block, msg, len);
        t += len;
        b2b_compress(h, block, t, 1);
    }
    for (int i = 0; i < 4; i++) st64le(out + 8 * i, h[i]);
}

/* the key's states: `fresh` (parameter block applied) and `keyed` (after the key block) */
struct b2b_key {
    uint64_t fresh[8], keyed[8];
    uint8_t kblock[128];
};

static void b2b_key_init(struct b2b_key *k, const uint8_t key[32]) {
    memset(k->kblock, 0, sizeof k->kblock);
    memcpy(k->kblock, key, 32);
    for (int i = 0; i < 8; i++) k->fresh[i] = B2B_IV[i];
    k->fresh[0] ^= 0x01010000ULL ^ (32ULL << 8) ^ 32ULL; /* fanout 1, depth 1, key 32, digest 32 */
    memcpy(k->keyed, k->fresh, sizeof k->keyed);
    b2b_compress(k->keyed, k->kblock, 128, 0);
}

/* ---- lanes: one final block per 64-bit lane (x86-64, GCC or Clang) --------------------
 * m holds the lanes' zero-padded blocks (AVX2: transposed, word w of lane l at m[4 w + l];
 * AVX-512: row by row, at m[16 l + w]), t their counters (128 + length); lane l's digest
 * (the first four state words) goes to out[l]. */

enum { B2B_SCALAR = 0, B2B_AVX2 = 1, B2B_AVX512 = 2, B2B_ISAS = 3 };
static const char *const B2B_ISA_NAMES[B2B_ISAS] = {"scalar", "avx2", "avx512"};

#if defined(__x86_64__) && defined(__GNUC__)
#define B2B_LANES 1
#include <immintrin.h>

/* the first r < 8 bytes at p, little-endian */
static inline uint64_t ld_le(const uint8_t *p, size_t r) {
    uint64_t w = 0;
    for (size_t k = 0; k < r; k++) w |= (uint64_t)p[k] << (8 * k);
    return w;
}

typedef void (*b2b_lanes_fn)(const uint64_t keyed[8], const uint64_t *m, const uint64_t *t,
                             uint8_t *const out[]);

#define B2B_G512(a, b, c, d, x, y)                                    \
    do {                                                              \
        v[a] = _mm512_add_epi64(_mm512_add_epi64(v[a], v[b]), (x));   \
        v[d] = _mm512_ror_epi64(_mm512_xor_si512(v[d], v[a]), 32);    \
        v[c] = _mm512_add_epi64(v[c], v[d]);                          \
        v[b] = _mm512_ror_epi64(_mm512_xor_si512(v[b], v[c]), 24);    \
        v[a] = _mm512_add_epi64(_mm512_add_epi64(v[a], v[b]), (y));   \
        v[d] = _mm512_ror_epi64(_mm512_xor_si512(v[d], v[a]), 16);    \
        v[c] = _mm512_add_epi64(v[c], v[d]);                          \
        v[b] = _mm512_ror_epi64(_mm512_xor_si512(v[b], v[c]), 63);    \
    } while (0)

/* 8x8 words: in r[l] word w of lane l, out in m[w] (24 shuffles) */
__attribute__((target("avx512f"), always_inline)) static inline void b2b_transpose8(
    const __m512i r[8], __m512i m[8]) {
    __m512i t[8], u[8];
    for (int i = 0; i < 4; i++) { /* words 2k | 2k+1 of lanes 2i, 2i+1 */
        t[i] = _mm512_unpacklo_epi64(r[2 * i], r[2 * i + 1]);
        t[i + 4] = _mm512_unpackhi_epi64(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 8; i += 2) { /* 128-bit blocks: even ones of t[i], t[i+1], odd ones */
        u[i] = _mm512_shuffle_i64x2(t[i], t[i + 1], _MM_SHUFFLE(2, 0, 2, 0));
        u[i + 1] = _mm512_shuffle_i64x2(t[i], t[i + 1], _MM_SHUFFLE(3, 1, 3, 1));
    }
    /* u[0]: words 0, 4 of lanes 0..3; u[2]: of lanes 4..7; u[1], u[3]: words 2, 6; u[4..7]
     * the same for the odd words */
    for (int odd = 0; odd < 2; odd++) {
        const __m512i *q = u + 4 * odd;
        m[odd + 0] = _mm512_shuffle_i64x2(q[0], q[2], _MM_SHUFFLE(2, 0, 2, 0));
        m[odd + 4] = _mm512_shuffle_i64x2(q[0], q[2], _MM_SHUFFLE(3, 1, 3, 1));
        m[odd + 2] = _mm512_shuffle_i64x2(q[1], q[3], _MM_SHUFFLE(2, 0, 2, 0));
        m[odd + 6] = _mm512_shuffle_i64x2(q[1], q[3], _MM_SHUFFLE(3, 1, 3, 1));
    }
}

/* AVX-512 takes its lanes' blocks row by row (lane l's words at rows[16 l ..]: one 64-byte
 * store each) and transposes them here. full 0: every lane's message fits 64 bytes, words
 * 8..15 are zero (their additions are left out: ~7% fewer instructions) */
__attribute__((target("avx512f"), always_inline)) static inline void b2b_lanes8(
    const uint64_t keyed[8], const uint64_t *rows, const uint64_t *t, uint8_t *const out[],
    const int full) {
    __m512i v[16], m[16], r[8];
    for (int half = 0; half < 2; half++) {
        if (half && !full) {
            for (int i = 8; i < 16; i++) m[i] = _mm512_setzero_si512();
            break;
        }
        for (int l = 0; l < 8; l++)
            r[l] = _mm512_load_si512((const void *)(rows + 16 * l + 8 * half));
        b2b_transpose8(r, m + 8 * half);
    }
    for (int i = 0; i < 8; i++) {
        v[i] = _mm512_set1_epi64((long long)keyed[i]);
        v[i + 8] = _mm512_set1_epi64((long long)B2B_IV[i]);
    }
    v[12] = _mm512_xor_si512(v[12], _mm512_load_si512((const void *)t));
    v[14] = _mm512_set1_epi64((long long)~B2B_IV[6]); /* the last block */
    B2B_ROUNDS(B2B_G512);
    __m512i h[4];
    for (int i = 0; i < 4; i++) /* 0x96: a ^ b ^ c */
        h[i] = _mm512_ternarylogic_epi64(v[i], v[i + 8], _mm512_set1_epi64((long long)keyed[i]),
                                         0x96);
    /* words (h0, h1) of lanes 2k | 2k+1 and (h2, h3) the same, then lanes 2k and 2k+1 of
     * both in two 256-bit halves */
    __m512i lo01 = _mm512_unpacklo_epi64(h[0], h[1]), hi01 = _mm512_unpackhi_epi64(h[0], h[1]);
    __m512i lo23 = _mm512_unpacklo_epi64(h[2], h[3]), hi23 = _mm512_unpackhi_epi64(h[2], h[3]);
    const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    const __m512i second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    __m512i l02 = _mm512_permutex2var_epi64(lo01, first, lo23);
    __m512i l46 = _mm512_permutex2var_epi64(lo01, second, lo23);
    __m512i l13 = _mm512_permutex2var_epi64(hi01, first, hi23);
    __m512i l57 = _mm512_permutex2var_epi64(hi01, second, hi23);
    _mm256_storeu_si256((__m256i *)out[0], _mm512_castsi512_si256(l02));
    _mm256_storeu_si256((__m256i *)out[1], _mm512_castsi512_si256(l13));
    _mm256_storeu_si256((__m256i *)out[2], _mm512_extracti64x4_epi64(l02, 1));
    _mm256_storeu_si256((__m256i *)out[3], _mm512_extracti64x4_epi64(l13, 1));
    _mm256_storeu_si256((__m256i *)out[4], _mm512_castsi512_si256(l46));
    _mm256_storeu_si256((__m256i *)out[5], _mm512_castsi512_si256(l57));
    _mm256_storeu_si256((__m256i *)out[6], _mm512_extracti64x4_epi64(l46, 1));
    _mm256_storeu_si256((__m256i *)out[7], _mm512_extracti64x4_epi64(l57, 1));
}

__attribute__((target("avx512f"))) static void b2b_lanes8_avx512(const uint64_t keyed[8],
                                                                 const uint64_t *rows,
                                                                 const uint64_t *t,
                                                                 uint8_t *const out[]) {
    b2b_lanes8(keyed, rows, t, out, 1);
}

__attribute__((target("avx512f"))) static void b2b_lanes8_avx512_64(const uint64_t keyed[8],
                                                                    const uint64_t *rows,
                                                                    const uint64_t *t,
                                                                    uint8_t *const out[]) {
    b2b_lanes8(keyed, rows, t, out, 0);
}

/* AVX2 has no 64-bit rotate: by 32 a dword shuffle, by 24 and 16 a byte shuffle, by 63
 * (left by 1) x >> 63 | x + x */
#define B2B_G256(a, b, c, d, x, y)                                                        \
    do {                                                                                  \
        v[a] = _mm256_add_epi64(_mm256_add_epi64(v[a], v[b]), (x));                       \
        v[d] = _mm256_shuffle_epi32(_mm256_xor_si256(v[d], v[a]), _MM_SHUFFLE(2, 3, 0, 1)); \
        v[c] = _mm256_add_epi64(v[c], v[d]);                                              \
        v[b] = _mm256_shuffle_epi8(_mm256_xor_si256(v[b], v[c]), r24);                    \
        v[a] = _mm256_add_epi64(_mm256_add_epi64(v[a], v[b]), (y));                       \
        v[d] = _mm256_shuffle_epi8(_mm256_xor_si256(v[d], v[a]), r16);                    \
        v[c] = _mm256_add_epi64(v[c], v[d]);                                              \
        v[b] = _mm256_xor_si256(v[b], v[c]);                                              \
        v[b] = _mm256_or_si256(_mm256_srli_epi64(v[b], 63), _mm256_add_epi64(v[b], v[b])); \
    } while (0)

__attribute__((target("avx2"), always_inline)) static inline void b2b_lanes4(
    const uint64_t keyed[8], const uint64_t *mw, const uint64_t *t, uint8_t *const out[],
    const int full) {
    const __m256i r24 = _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10,
                                         3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10);
    const __m256i r16 = _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9,
                                         2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9);
    __m256i v[16], m[16];
    for (int i = 0; i < 16; i++)
        m[i] = full || i < 8 ? _mm256_load_si256((const __m256i *)(mw + 4 * i))
                             : _mm256_setzero_si256();
    for (int i = 0; i < 8; i++) {
        v[i] = _mm256_set1_epi64x((long long)keyed[i]);
        v[i + 8] = _mm256_set1_epi64x((long long)B2B_IV[i]);
    }
    v[12] = _mm256_xor_si256(v[12], _mm256_load_si256((const __m256i *)t));
    v[14] = _mm256_set1_epi64x((long long)~B2B_IV[6]); /* the last block */
    B2B_ROUNDS(B2B_G256);
    __m256i h[4];
    for (int i = 0; i < 4; i++)
        h[i] = _mm256_xor_si256(_mm256_xor_si256(v[i], v[i + 8]),
                                _mm256_set1_epi64x((long long)keyed[i]));
    __m256i lo01 = _mm256_unpacklo_epi64(h[0], h[1]), hi01 = _mm256_unpackhi_epi64(h[0], h[1]);
    __m256i lo23 = _mm256_unpacklo_epi64(h[2], h[3]), hi23 = _mm256_unpackhi_epi64(h[2], h[3]);
    _mm256_storeu_si256((__m256i *)out[0], _mm256_permute2x128_si256(lo01, lo23, 0x20));
    _mm256_storeu_si256((__m256i *)out[1], _mm256_permute2x128_si256(hi01, hi23, 0x20));
    _mm256_storeu_si256((__m256i *)out[2], _mm256_permute2x128_si256(lo01, lo23, 0x31));
    _mm256_storeu_si256((__m256i *)out[3], _mm256_permute2x128_si256(hi01, hi23, 0x31));
}

__attribute__((target("avx2"))) static void b2b_lanes4_avx2(const uint64_t keyed[8],
                                                            const uint64_t *mw,
                                                            const uint64_t *t,
                                                            uint8_t *const out[]) {
    b2b_lanes4(keyed, mw, t, out, 1);
}

__attribute__((target("avx2"))) static void b2b_lanes4_avx2_64(const uint64_t keyed[8],
                                                               const uint64_t *mw,
                                                               const uint64_t *t,
                                                               uint8_t *const out[]) {
    b2b_lanes4(keyed, mw, t, out, 0);
}
#else
#define B2B_LANES 0
#endif

static int b2b_isa_available(int isa) {
#if B2B_LANES
    if (isa == B2B_AVX2) return __builtin_cpu_supports("avx2");
    if (isa == B2B_AVX512) return __builtin_cpu_supports("avx512f");
#endif
    return isa == B2B_SCALAR;
}

/* isa -1: the best this CPU has; else the one asked for (ValueError when it lacks it) */
static int b2b_isa_choose(int isa) {
    if (isa == -1) {
        for (isa = B2B_ISAS - 1; !b2b_isa_available(isa); isa--) {
        }
        return isa;
    }
    if (isa < -1 || isa >= B2B_ISAS) {
        PyErr_Format(PyExc_ValueError,
                     "isa must be -1 (best), 0 (scalar), 1 (avx2) or 2 (avx512), got %d", isa);
        return -1;
    }
    if (!b2b_isa_available(isa)) {
        PyErr_Format(PyExc_ValueError, "isa %d (%s) is not available on this CPU or build", isa,
                     B2B_ISA_NAMES[isa]);
        return -1;
    }
    return isa;
}

/* Salts of rows (b2b_salt_rows) into their own outputs: with lanes, ids of 1..128 bytes
 * wait in a batch that is hashed when full, and by b2b_salts_flush (a partly filled batch:
 * the unused lanes hash stale words into `sink`). A batch may hold rows of several calls
 * (the parts of salts_bytes). */
struct b2b_salter {
    const struct b2b_key *key;
    int lanes, n; /* lanes 0: scalar */
#if B2B_LANES
    b2b_lanes_fn fn, fn64; /* fn64: for a batch of messages of at most 64 bytes */
    int maxw;              /* the batch's longest message, in words */
    uint8_t *out[8];
    uint8_t words[8]; /* AVX2: lane l's last block, words beyond words[l] are zero */
    _Alignas(64) uint64_t t[8];
    _Alignas(64) uint64_t m[16 * 8]; /* AVX2 transposed (m[4 w + l]), AVX-512 rows (m[16 l + w]) */
    uint8_t sink[32];
#endif
};

static void b2b_salter_init(struct b2b_salter *s, const struct b2b_key *key, int isa) {
    memset(s, 0, sizeof *s); /* no lane is ever read uninitialised */
    s->key = key;
#if B2B_LANES
    if (isa == B2B_AVX512) {
        s->lanes = 8;
        s->fn = b2b_lanes8_avx512;
        s->fn64 = b2b_lanes8_avx512_64;
    } else if (isa == B2B_AVX2) {
        s->lanes = 4;
        s->fn = b2b_lanes4_avx2;
        s->fn64 = b2b_lanes4_avx2_64;
    }
#endif
}

static void b2b_salts_flush(struct b2b_salter *s) {
#if B2B_LANES
    if (s->n == 0) return;
    for (int l = s->n; l < s->lanes; l++) s->out[l] = s->sink;
    (s->maxw <= 8 ? s->fn64 : s->fn)(s->key->keyed, s->m, s->t, s->out);
    s->maxw = 0;
    s->n = 0;
#endif
}

static inline void b2b_salt(struct b2b_salter *s, const uint8_t *msg, size_t len,
                            uint8_t out[32]) {
#if B2B_LANES
    if (s->lanes && len >= 1 && len <= 128) {
        const int l = s->n, lanes = s->lanes;
        uint64_t *m = s->m + l;
        size_t j = 0, r = len & 7;
        for (; j < len >> 3; j++) m[lanes * j] = ld64le(msg + 8 * j);
        if (r) /* the last bytes, zero-padded, read without going past the id */
            m[lanes * j++] = len >= 8 ? ld64le(msg + len - 8) >> (64 - 8 * r) : ld_le(msg, r);
        for (; j < s->words[l]; j++) m[lanes * j] = 0; /* the lane's previous block */
        s->words[l] = (uint8_t)((len + 7) >> 3);
        if (s->words[l] > s->maxw) s->maxw = s->words[l];
        s->t[l] = 128 + len;
        s->out[l] = out;
        if (++s->n == lanes) b2b_salts_flush(s);
        return;
    }
#endif
    b2b_keyed32(s->key->keyed, s->key->fresh, s->key->kblock, msg, len, out);
}

#if B2B_LANES
/* 64 bytes 0xff then 64 zero bytes: from B2B_BYTEMASK + 64 - n, n bytes kept in a vector */
#define B2B_FF4 0xff, 0xff, 0xff, 0xff
#define B2B_FF16 B2B_FF4, B2B_FF4, B2B_FF4, B2B_FF4
static const uint8_t B2B_BYTEMASK[128] = {B2B_FF16, B2B_FF16, B2B_FF16, B2B_FF16};

/* AVX-512: a lane's block is two masked 64-byte loads of whole words (a masked-off word is
 * not read, cannot fault) cut to the id's bytes; where the id's last word would reach past
 * the blob, from a copy. */
__attribute__((target("avx512f"))) static void b2b_rows_avx512(struct b2b_salter *s,
                                                               const uint8_t *blob,
                                                               size_t bloblen,
                                                               const uint8_t *offs,
                                                               Py_ssize_t i0, Py_ssize_t i1,
                                                               uint8_t *out) {
    uint8_t copy[128];
    for (Py_ssize_t i = i0; i < i1; i++, out += HASH) {
        uint64_t st = ld64n(offs + 8 * i), len = ld64n(offs + 8 * (i + 1)) - 1 - st;
        const uint8_t *msg = blob + st;
        if (len == 0 || len > 128) {
            b2b_keyed32(s->key->keyed, s->key->fresh, s->key->kblock, msg, len, out);
            continue;
        }
        unsigned w = (unsigned)(len + 7) >> 3;
        if (st + 8 * w > bloblen) {
            memcpy(copy, msg, len);
            msg = copy;
        }
        const int l = s->n;
        uint64_t *row = s->m + 16 * l;
        __m512i lo = _mm512_maskz_loadu_epi64((__mmask8)((1u << (w < 8 ? w : 8)) - 1), msg);
        lo = _mm512_and_si512(lo, _mm512_loadu_si512(B2B_BYTEMASK + 64 - (len < 64 ? len : 64)));
        __m512i hi = _mm512_setzero_si512();
        if (w > 8) {
            hi = _mm512_maskz_loadu_epi64((__mmask8)((1u << (w - 8)) - 1), msg + 64);
            hi = _mm512_and_si512(hi, _mm512_loadu_si512(B2B_BYTEMASK + 128 - len));
        }
        _mm512_store_si512(row, lo);
        _mm512_store_si512(row + 8, hi);
        if ((int)w > s->maxw) s->maxw = (int)w;
        s->t[l] = 128 + len;
        s->out[l] = out;
        if (++s->n == 8) b2b_salts_flush(s);
    }
}
#endif

/* the salts of rows [i0, i1) of a (blob, offsets) column, row i0's to out */
static void b2b_salt_rows(struct b2b_salter *s, const uint8_t *blob, size_t bloblen,
                          const uint8_t *offs, Py_ssize_t i0, Py_ssize_t i1, uint8_t *out) {
#if B2B_LANES
    if (s->lanes == 8) {
        b2b_rows_avx512(s, blob, bloblen, offs, i0, i1, out);
        return;
    }
#endif
    for (Py_ssize_t i = i0; i < i1; i++, out += HASH) {
        uint64_t st = ld64n(offs + 8 * i), e = ld64n(offs + 8 * (i + 1));
        b2b_salt(s, blob + st, (size_t)(e - 1 - st), out);
    }
}

/* ---- derive_salts(key, blob, offsets, start, stop, out[, isa]) -------------------------
 * out[32 i : 32 i + 32] = BLAKE2b-256(key=key, account i) for i in [start, stop): the salts
 * of por.core.mst.derive_salt, for ids already validated into the blob. isa: -1 the best
 * available (default), 0 scalar, 1 AVX2, 2 AVX-512 (for tests; see blake2b_isas()). */

static PyObject *derive_salts(PyObject *self, PyObject *args) {
    PyObject *key_o, *blob_o, *off_o, *out_o;
    Py_ssize_t start, stop;
    int isa = -1;
    if (!PyArg_ParseTuple(args, "OOOnnO|i", &key_o, &blob_o, &off_o, &start, &stop, &out_o,
                          &isa))
        return NULL;
    if ((isa = b2b_isa_choose(isa)) < 0) return NULL;
    Py_buffer key, blob, off, out;
    int ok = 0;
    if (get_buf(key_o, &key, 0, "key") < 0) return NULL;
    if (get_buf(blob_o, &blob, 0, "blob") < 0) goto r1;
    if (get_buf(off_o, &off, 0, "offsets") < 0) goto r2;
    if (get_buf(out_o, &out, 1, "out") < 0) goto r3;
    if (key.len != 32) {
        PyErr_Format(PyExc_ValueError, "key must be 32 bytes, got %zd", key.len);
        goto r4;
    }
    if (start < 0 || stop < start) {
        PyErr_Format(PyExc_ValueError, "bad row range [%zd, %zd)", start, stop);
        goto r4;
    }
    if (want_len(&off, 8 * (stop + 1), "offsets") < 0 || want_len(&out, HASH * stop, "out") < 0)
        goto r4;
    const uint8_t *offs = off.buf;
    for (Py_ssize_t i = start; i < stop; i++) {
        uint64_t s = ld64n(offs + 8 * i), e = ld64n(offs + 8 * (i + 1));
        if (e <= s || e > (uint64_t)blob.len) {
            PyErr_Format(PyExc_ValueError, "offsets[%zd..%zd] outside the blob", i, i + 1);
            goto r4;
        }
    }
    struct b2b_key k;
    b2b_key_init(&k, key.buf);
    Py_BEGIN_ALLOW_THREADS
    struct b2b_salter salter;
    b2b_salter_init(&salter, &k, isa);
    b2b_salt_rows(&salter, blob.buf, (size_t)blob.len, offs, start, stop,
                  (uint8_t *)out.buf + HASH * start);
    b2b_salts_flush(&salter);
    Py_END_ALLOW_THREADS
    ok = 1;
r4:
    PyBuffer_Release(&out);
r3:
    PyBuffer_Release(&off);
r2:
    PyBuffer_Release(&blob);
r1:
    PyBuffer_Release(&key);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* ---- salts_bytes(key, parts, threads[, isa]) -> bytes ----------------------------------
 * derive_salts over every row of several (blob, offsets) columns, one after another, into
 * one new bytes object on `threads` POSIX threads: the salts go to the tree as they are
 * (no copy from a scratch array, 320 MB at 10^7), and the chains' columns need not be
 * joined first (the service joins them meanwhile, por.service.run). isa as derive_salts. */

struct salt_part {
    Py_buffer blob, off;
    Py_ssize_t n, base; /* rows, and the first row's index in the output */
};

struct salt_share {
    const struct b2b_key *key;
    int isa;
    const struct salt_part *parts;
    Py_ssize_t nparts;
    uint8_t *out;
    Py_ssize_t start, stop; /* output rows */
};

static void *salt_share_run(void *arg) {
    struct salt_share *sh = arg;
    struct b2b_salter salter; /* a batch may hold rows of consecutive parts */
    b2b_salter_init(&salter, sh->key, sh->isa);
    for (Py_ssize_t p = 0; p < sh->nparts; p++) {
        const struct salt_part *pt = &sh->parts[p];
        Py_ssize_t a = sh->start > pt->base ? sh->start : pt->base;
        Py_ssize_t b = sh->stop < pt->base + pt->n ? sh->stop : pt->base + pt->n;
        b2b_salt_rows(&salter, pt->blob.buf, (size_t)pt->blob.len, pt->off.buf, a - pt->base,
                      b - pt->base, sh->out + HASH * a);
    }
    b2b_salts_flush(&salter);
    return NULL;
}

#define MAX_THREADS 256

static PyObject *salts_bytes(PyObject *self, PyObject *args) {
    PyObject *key_o, *parts_o, *seq = NULL, *result = NULL;
    Py_ssize_t threads, nparts = 0, got = 0;
    struct salt_part *parts = NULL;
    Py_buffer key;
    int isa = -1;
    if (!PyArg_ParseTuple(args, "OOn|i", &key_o, &parts_o, &threads, &isa)) return NULL;
    if ((isa = b2b_isa_choose(isa)) < 0) return NULL;
    if (get_buf(key_o, &key, 0, "key") < 0) return NULL;
    if (key.len != 32) {
        PyErr_Format(PyExc_ValueError, "key must be 32 bytes, got %zd", key.len);
        goto done;
    }
    seq = PySequence_Fast(parts_o, "parts must be a sequence of (blob, offsets)");
    if (seq == NULL) goto done;
    nparts = PySequence_Fast_GET_SIZE(seq);
    parts = PyMem_Calloc(nparts > 0 ? nparts : 1, sizeof *parts);
    if (parts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t n = 0;
    for (; got < nparts; got++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, got), *blob_o, *off_o;
        if (!PyArg_ParseTuple(item, "OO", &blob_o, &off_o)) goto done;
        struct salt_part *pt = &parts[got];
        if (get_buf(blob_o, &pt->blob, 0, "blob") < 0) goto done;
        if (get_buf(off_o, &pt->off, 0, "offsets") < 0) {
            PyBuffer_Release(&pt->blob);
            goto done;
        }
        if (pt->off.len < 8 || pt->off.len % 8) {
            PyErr_Format(PyExc_ValueError, "parts[%zd]: offsets of %zd bytes", got, pt->off.len);
            got++;
            goto done;
        }
        pt->n = pt->off.len / 8 - 1;
        pt->base = n;
        n += pt->n;
        const uint8_t *offs = pt->off.buf;
        for (Py_ssize_t i = 0; i < pt->n; i++) {
            uint64_t s = ld64n(offs + 8 * i), e = ld64n(offs + 8 * (i + 1));
            if (e <= s || e > (uint64_t)pt->blob.len) {
                PyErr_Format(PyExc_ValueError, "parts[%zd]: offsets[%zd..%zd] outside the blob",
                             got, i, i + 1);
                got++;
                goto done;
            }
        }
    }
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > n) threads = n > 0 ? n : 1;
    result = PyBytes_FromStringAndSize(NULL, HASH * n);
    if (result == NULL) goto done;
    struct b2b_key k;
    b2b_key_init(&k, key.buf);
    struct salt_share shares[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (Py_ssize_t t = 0; t < threads; t++) {
        shares[t] = (struct salt_share){&k,     isa,
                                        parts,  nparts,
                                        (uint8_t *)PyBytes_AS_STRING(result),
                                        n * t / threads,
                                        n * (t + 1) / threads};
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, salt_share_run, &shares[t]) == 0;
    salt_share_run(&shares[0]);
    for (Py_ssize_t t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            salt_share_run(&shares[t]); /* no thread to be had: do its share here */
    }
    Py_END_ALLOW_THREADS
done:
    for (Py_ssize_t j = 0; j < got; j++) {
        PyBuffer_Release(&parts[j].blob);
        PyBuffer_Release(&parts[j].off);
    }
    PyMem_Free(parts);
    Py_XDECREF(seq);
    PyBuffer_Release(&key);
    if (PyErr_Occurred()) {
        Py_CLEAR(result);
        return NULL;
    }
    return result;
}

/* ---- blake2b_isas() -> tuple of the lane widths this CPU runs, e.g. ("scalar", "avx2") -- */

static PyObject *blake2b_isas(PyObject *self, PyObject *noargs) {
    PyObject *names = PyList_New(0), *tup = NULL;
    if (names == NULL) return NULL;
    for (int isa = 0; isa < B2B_ISAS; isa++) {
        if (!b2b_isa_available(isa)) continue;
        PyObject *s = PyUnicode_FromString(B2B_ISA_NAMES[isa]);
        int bad = s == NULL || PyList_Append(names, s) < 0;
        Py_XDECREF(s);
        if (bad) goto done;
    }
    tup = PyList_AsTuple(names);
done:
    Py_DECREF(names);
    return tup;
}

static PyMethodDef methods[] = {
    {"sha256_rows", sha256_rows, METH_VARARGS, "sha256_rows(src, width, out): SHA-256 of each row"},
    {"leaf_pass", leaf_pass, METH_VARARGS,
     "leaf_pass(blob, offsets, salts, lo, hi, start, stop, leaves, leaf_keys, acct_keys, base=0)"},
    {"gather_records", gather_records, METH_VARARGS,
     "gather_records(leaves, lo, hi, idx, out): level-0 records in the order idx"},
    {"bucket_records", bucket_records, METH_VARARGS,
     "bucket_records(leaves, lo, hi, first_row, bits, outs, narrow=False): records by bucket"},
    {"gather_pieces", gather_pieces, METH_VARARGS,
     "gather_pieces(records, order, level0, rows, narrow=False): a bucket's leaves in order"},
    {"node_level", node_level, METH_VARARGS,
     "node_level(src, dst) -> False when a sum reaches 2^127"},
    {"derive_salts", derive_salts, METH_VARARGS,
     "derive_salts(key, blob, offsets, start, stop, out[, isa]): keyed BLAKE2b-256 salts"},
    {"salts_bytes", salts_bytes, METH_VARARGS,
     "salts_bytes(key, [(blob, offsets), ...], threads[, isa]) -> bytes: every salt, on POSIX "
     "threads"},
    {"blake2b_isas", blake2b_isas, METH_NOARGS,
     "blake2b_isas() -> the BLAKE2b paths this CPU runs: isa 0, 1, 2 of derive_salts"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_mstkernel",
    .m_doc = "Batched SHA-256 / BLAKE2b for the sum-tree build.", .m_size = -1,
    .m_methods = methods};

PyMODINIT_FUNC PyInit__mstkernel(void) {
#if B2B_LANES
    __builtin_cpu_init();
#endif
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddStringConstant(m, "SHA256_IMPL", OpenSSL_version(0)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
