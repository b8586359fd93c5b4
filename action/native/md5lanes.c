/* MD5 of up to eight independent streams at once (multi-buffer MD5).
 *
 * MD5 is one long chain of dependent steps, so a core hashing one stream waits on
 * latency and leaves most of its vector units idle. Here each 32-bit lane of a 256-bit
 * register carries a different stream: eight files cost about what one costs. Built as
 * a plain shared library (no Python headers) and called through ctypes, which drops the
 * GIL for the call. Two x86-64 builds of the same body: AVX-512VL (one-instruction
 * rotates and boolean functions) and AVX2; the best the CPU runs is picked at the
 * first call. Elsewhere md5lanes_level() is 0 and the caller uses hashlib.
 *
 * Only whole 64-byte blocks pass through here; padding and the final length block are
 * the caller's (they are the same MD5 blocks, see action/md5lanes.py).
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define LANES 8

/* MD5LANES_NO_VECTOR builds the stubs below anywhere (the tests' fallback case). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(MD5LANES_NO_VECTOR)
#include <immintrin.h>

static const uint32_t K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
    0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
    0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
    0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
    0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
    0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391,
};

/* One MD5 step on all lanes: a = b + rotl(a + k + w + fn(b, c, d), s). Only fn
 * waits on the previous step's b; a + k + w is ready earlier. The empty asm keeps
 * the compiler from re-associating the sum so that fn's result goes through two
 * additions before the rotate: one cycle more on a chain of 64 steps a block. */
#define STEP(FN, a, b, c, d, w, i, s)                                                  \
    a = _mm256_add_epi32(a, _mm256_add_epi32(w, _mm256_set1_epi32((int)K[i])));        \
    __asm__("" : "+v"(a));                                                             \
    a = _mm256_add_epi32(b, ROTL(_mm256_add_epi32(a, FN(b, c, d)), s))

/* Lane l's 32 bytes at p[l] become eight vectors, vector j holding word j of each. */
#define TRANSPOSE_LOAD(out, p, off)                                                    \
    do {                                                                               \
        __m256i r0 = _mm256_loadu_si256((const __m256i *)(p[0] + (off)));              \
        __m256i r1 = _mm256_loadu_si256((const __m256i *)(p[1] + (off)));              \
        __m256i r2 = _mm256_loadu_si256((const __m256i *)(p[2] + (off)));              \
        __m256i r3 = _mm256_loadu_si256((const __m256i *)(p[3] + (off)));              \
        __m256i r4 = _mm256_loadu_si256((const __m256i *)(p[4] + (off)));              \
        __m256i r5 = _mm256_loadu_si256((const __m256i *)(p[5] + (off)));              \
        __m256i r6 = _mm256_loadu_si256((const __m256i *)(p[6] + (off)));              \
        __m256i r7 = _mm256_loadu_si256((const __m256i *)(p[7] + (off)));              \
        __m256i t0 = _mm256_unpacklo_epi32(r0, r1), t1 = _mm256_unpackhi_epi32(r0, r1); \
        __m256i t2 = _mm256_unpacklo_epi32(r2, r3), t3 = _mm256_unpackhi_epi32(r2, r3); \
        __m256i t4 = _mm256_unpacklo_epi32(r4, r5), t5 = _mm256_unpackhi_epi32(r4, r5); \
        __m256i t6 = _mm256_unpacklo_epi32(r6, r7), t7 = _mm256_unpackhi_epi32(r6, r7); \
        __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2); \
        __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3); \
        __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6); \
        __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7); \
        out[0] = _mm256_permute2x128_si256(u0, u4, 0x20);                              \
        out[1] = _mm256_permute2x128_si256(u1, u5, 0x20);                              \
        out[2] = _mm256_permute2x128_si256(u2, u6, 0x20);                              \
        out[3] = _mm256_permute2x128_si256(u3, u7, 0x20);                              \
        out[4] = _mm256_permute2x128_si256(u0, u4, 0x31);                              \
        out[5] = _mm256_permute2x128_si256(u1, u5, 0x31);                              \
        out[6] = _mm256_permute2x128_si256(u2, u6, 0x31);                              \
        out[7] = _mm256_permute2x128_si256(u3, u7, 0x31);                              \
    } while (0)

/* The 64 steps over `blocks` blocks of every lane; p[l] advances by 64 per block
 * unless step[l] is 0 (an idle lane re-reading one dummy block). */
#define BODY                                                                           \
    __m256i a = _mm256_loadu_si256((const __m256i *)st[0]);                            \
    __m256i b = _mm256_loadu_si256((const __m256i *)st[1]);                            \
    __m256i c = _mm256_loadu_si256((const __m256i *)st[2]);                            \
    __m256i d = _mm256_loadu_si256((const __m256i *)st[3]);                            \
    const unsigned char *p[LANES];                                                     \
    memcpy(p, ptr, sizeof p);                                                          \
    for (size_t n = 0; n < blocks; n++) {                                              \
        __m256i w[16];                                                                 \
        TRANSPOSE_LOAD(w, p, 0);                                                       \
        TRANSPOSE_LOAD((w + 8), p, 32);                                                \
        __m256i a0 = a, b0 = b, c0 = c, d0 = d;                                        \
        STEP(F, a, b, c, d, w[0], 0, 7);   STEP(F, d, a, b, c, w[1], 1, 12);           \
        STEP(F, c, d, a, b, w[2], 2, 17);  STEP(F, b, c, d, a, w[3], 3, 22);           \
        STEP(F, a, b, c, d, w[4], 4, 7);   STEP(F, d, a, b, c, w[5], 5, 12);           \
        STEP(F, c, d, a, b, w[6], 6, 17);  STEP(F, b, c, d, a, w[7], 7, 22);           \
        STEP(F, a, b, c, d, w[8], 8, 7);   STEP(F, d, a, b, c, w[9], 9, 12);           \
        STEP(F, c, d, a, b, w[10], 10, 17); STEP(F, b, c, d, a, w[11], 11, 22);        \
        STEP(F, a, b, c, d, w[12], 12, 7); STEP(F, d, a, b, c, w[13], 13, 12);         \
        STEP(F, c, d, a, b, w[14], 14, 17); STEP(F, b, c, d, a, w[15], 15, 22);        \
        STEP(G, a, b, c, d, w[1], 16, 5);  STEP(G, d, a, b, c, w[6], 17, 9);           \
        STEP(G, c, d, a, b, w[11], 18, 14); STEP(G, b, c, d, a, w[0], 19, 20);         \
        STEP(G, a, b, c, d, w[5], 20, 5);  STEP(G, d, a, b, c, w[10], 21, 9);          \
        STEP(G, c, d, a, b, w[15], 22, 14); STEP(G, b, c, d, a, w[4], 23, 20);         \
        STEP(G, a, b, c, d, w[9], 24, 5);  STEP(G, d, a, b, c, w[14], 25, 9);          \
        STEP(G, c, d, a, b, w[3], 26, 14); STEP(G, b, c, d, a, w[8], 27, 20);          \
        STEP(G, a, b, c, d, w[13], 28, 5); STEP(G, d, a, b, c, w[2], 29, 9);           \
        STEP(G, c, d, a, b, w[7], 30, 14); STEP(G, b, c, d, a, w[12], 31, 20);         \
        STEP(H, a, b, c, d, w[5], 32, 4);  STEP(H, d, a, b, c, w[8], 33, 11);          \
        STEP(H, c, d, a, b, w[11], 34, 16); STEP(H, b, c, d, a, w[14], 35, 23);        \
        STEP(H, a, b, c, d, w[1], 36, 4);  STEP(H, d, a, b, c, w[4], 37, 11);          \
        STEP(H, c, d, a, b, w[7], 38, 16); STEP(H, b, c, d, a, w[10], 39, 23);         \
        STEP(H, a, b, c, d, w[13], 40, 4); STEP(H, d, a, b, c, w[0], 41, 11);          \
        STEP(H, c, d, a, b, w[3], 42, 16); STEP(H, b, c, d, a, w[6], 43, 23);          \
        STEP(H, a, b, c, d, w[9], 44, 4);  STEP(H, d, a, b, c, w[12], 45, 11);         \
        STEP(H, c, d, a, b, w[15], 46, 16); STEP(H, b, c, d, a, w[2], 47, 23);         \
        STEP(I, a, b, c, d, w[0], 48, 6);  STEP(I, d, a, b, c, w[7], 49, 10);          \
        STEP(I, c, d, a, b, w[14], 50, 15); STEP(I, b, c, d, a, w[5], 51, 21);         \
        STEP(I, a, b, c, d, w[12], 52, 6); STEP(I, d, a, b, c, w[3], 53, 10);          \
        STEP(I, c, d, a, b, w[10], 54, 15); STEP(I, b, c, d, a, w[1], 55, 21);         \
        STEP(I, a, b, c, d, w[8], 56, 6);  STEP(I, d, a, b, c, w[15], 57, 10);         \
        STEP(I, c, d, a, b, w[6], 58, 15); STEP(I, b, c, d, a, w[13], 59, 21);         \
        STEP(I, a, b, c, d, w[4], 60, 6);  STEP(I, d, a, b, c, w[11], 61, 10);         \
        STEP(I, c, d, a, b, w[2], 62, 15); STEP(I, b, c, d, a, w[9], 63, 21);          \
        a = _mm256_add_epi32(a, a0); b = _mm256_add_epi32(b, b0);                      \
        c = _mm256_add_epi32(c, c0); d = _mm256_add_epi32(d, d0);                      \
        for (int l = 0; l < LANES; l++) p[l] += step[l];                               \
    }                                                                                  \
    _mm256_storeu_si256((__m256i *)st[0], a);                                          \
    _mm256_storeu_si256((__m256i *)st[1], b);                                          \
    _mm256_storeu_si256((__m256i *)st[2], c);                                          \
    _mm256_storeu_si256((__m256i *)st[3], d)

/* st[r][l] is word r (a, b, c, d) of lane l's state. */
typedef void (*blocks_fn)(uint32_t st[4][LANES], const unsigned char *const *ptr,
                          const size_t *step, size_t blocks);

/* AVX-512VL: vprold rotates, vpternlogd evaluates each round's function in one go. */
#define ROTL(x, s) _mm256_rol_epi32((x), (s))
#define F(b, c, d) _mm256_ternarylogic_epi32((b), (c), (d), 0xca)
#define G(b, c, d) _mm256_ternarylogic_epi32((b), (c), (d), 0xe4)
#define H(b, c, d) _mm256_ternarylogic_epi32((b), (c), (d), 0x96)
#define I(b, c, d) _mm256_ternarylogic_epi32((b), (c), (d), 0x39)
__attribute__((target("avx2,avx512f,avx512vl"))) static void
blocks_avx512(uint32_t st[4][LANES], const unsigned char *const *ptr, const size_t *step,
              size_t blocks) {
    BODY;
}
#undef ROTL
#undef F
#undef G
#undef H
#undef I

/* AVX2: the same with shifts and two-operand logic. */
#define ROTL(x, s) _mm256_or_si256(_mm256_slli_epi32((x), (s)), _mm256_srli_epi32((x), 32 - (s)))
#define F(b, c, d) _mm256_xor_si256((d), _mm256_and_si256((b), _mm256_xor_si256((c), (d))))
#define G(b, c, d) _mm256_xor_si256((c), _mm256_and_si256((d), _mm256_xor_si256((b), (c))))
#define H(b, c, d) _mm256_xor_si256((b), _mm256_xor_si256((c), (d)))
#define I(b, c, d) \
    _mm256_xor_si256((c), _mm256_or_si256((b), _mm256_xor_si256((d), _mm256_set1_epi32(-1))))
__attribute__((target("avx2"))) static void
blocks_avx2(uint32_t st[4][LANES], const unsigned char *const *ptr, const size_t *step,
            size_t blocks) {
    BODY;
}

static int best_level(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) return 3;
    if (__builtin_cpu_supports("avx2")) return 2;
    return 0;
}

static int level = -1;

/* 0: no vector build here; 2: AVX2; 3: AVX-512VL. */
int md5lanes_level(void) {
    if (level < 0) level = best_level();
    return level;
}

/* Use at most `cap` (tests compare the builds); returns the level now in use. */
int md5lanes_limit(int cap) {
    int best = best_level();
    level = cap < best ? (cap >= 2 ? 2 : 0) : best;
    return level;
}

static blocks_fn pick(void) {
    int now = md5lanes_level();
    return now == 3 ? blocks_avx512 : now == 2 ? blocks_avx2 : NULL;
}

/* A run of whole blocks of one stream: `state` (a b c d) advances over `blocks`
 * blocks at `data`; `done` is set when it has. The caller keeps the run, its state
 * and its data alive and unchanged until then, and has at most one run of a stream
 * in flight. */
struct md5lanes_run {
    struct md5lanes_run *next;
    uint32_t *state;
    const unsigned char *data;
    size_t blocks;
    int done;
};

static const unsigned char idle_block[64];

/* Eight lanes and the runs in them (NULL: idle, re-reading idle_block). */
struct lanes {
    uint32_t st[4][LANES] __attribute__((aligned(32)));
    const unsigned char *ptr[LANES];
    size_t left[LANES], step[LANES];
    struct md5lanes_run *owner[LANES];
    int busy;
};

static void lanes_idle(struct lanes *ls, int l) {
    ls->owner[l] = NULL, ls->ptr[l] = idle_block, ls->left[l] = SIZE_MAX, ls->step[l] = 0;
}

static void lanes_init(struct lanes *ls) {
    for (int l = 0; l < LANES; l++) lanes_idle(ls, l);
    ls->busy = 0;
}

static void lanes_take(struct lanes *ls, int l, struct md5lanes_run *r) {
    ls->owner[l] = r, ls->ptr[l] = r->data, ls->left[l] = r->blocks, ls->step[l] = 64;
    for (int w = 0; w < 4; w++) ls->st[w][l] = r->state[w];
    ls->busy++;
}

/* Run every busy lane `limit` blocks or to the end of its shortest run; the runs
 * that end are written back, their lanes freed and they are put in `ended`.
 * Returns how many ended. */
static int lanes_run(struct lanes *ls, blocks_fn fn, size_t limit,
                     struct md5lanes_run **ended) {
    size_t run = limit;
    for (int l = 0; l < LANES; l++)
        if (ls->owner[l] && ls->left[l] < run) run = ls->left[l];
    fn(ls->st, ls->ptr, ls->step, run);
    int n = 0;
    for (int l = 0; l < LANES; l++) {
        struct md5lanes_run *r = ls->owner[l];
        if (!r) continue;
        ls->ptr[l] += run * 64, ls->left[l] -= run;
        if (ls->left[l]) continue;
        for (int w = 0; w < 4; w++) r->state[w] = ls->st[w][l];
        ended[n++] = r, ls->busy--;
        lanes_idle(ls, l);
    }
    return n;
}

/* Hash `n` runs (of distinct streams) in the calling thread and mark them done.
 * Returns 0, or -1 when there is no vector build (nothing is touched then). */
int md5lanes_hash(struct md5lanes_run *runs, int n) {
    blocks_fn fn = pick();
    if (!fn) return -1;
    struct lanes ls;
    struct md5lanes_run *ended[LANES];
    lanes_init(&ls);
    int next = 0;
    for (;;) {
        for (int l = 0; l < LANES; l++) {
            while (!ls.owner[l] && next < n) {
                struct md5lanes_run *r = &runs[next++];
                if (r->blocks) lanes_take(&ls, l, r); else r->done = 1;
            }
        }
        if (!ls.busy) return 0;
        int k = lanes_run(&ls, fn, SIZE_MAX, ended);
        for (int i = 0; i < k; i++) ended[i]->done = 1;
    }
}

/* The engine: one thread per process hashes every submitted run. It takes new runs
 * into idle lanes between slices of SLICE blocks (32 KiB a lane, tens of
 * microseconds). It hashes only when that pays or is needed: when every open stream
 * has a run waiting or in a lane (all the lanes there can be are full), or when a
 * thread waits for a run. Otherwise it lets runs gather, as hashing one stream alone
 * costs as much as hashing eight; a thread that needs its run is never kept waiting
 * by that. Idle, it sleeps on a condition variable. */
#define SLICE 512

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queued = PTHREAD_COND_INITIALIZER;
static pthread_cond_t ended_cv = PTHREAD_COND_INITIALIZER;
static struct md5lanes_run *head, *tail;
static int queued_runs, open_streams, waiting;
static pid_t engine_pid; /* the process whose engine thread runs; 0: none yet */

static int worth_running(const struct lanes *ls) {
    int full = open_streams < LANES ? open_streams : LANES;
    return (ls->busy || head) && (waiting || ls->busy + queued_runs >= full);
}

static void *engine(void *arg) {
    blocks_fn fn = (blocks_fn)arg;
    struct lanes ls;
    struct md5lanes_run *ended[2 * LANES]; /* empty runs taken, then runs that ended */
    lanes_init(&ls);
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!worth_running(&ls)) pthread_cond_wait(&queued, &mu);
        int k = 0;
        for (int l = 0; l < LANES && head; l++) {
            if (ls.owner[l]) continue;
            struct md5lanes_run *r = head;
            head = r->next, queued_runs--;
            if (!head) tail = NULL;
            if (r->blocks) lanes_take(&ls, l, r); else ended[k++] = r;
        }
        if (ls.busy) {
            pthread_mutex_unlock(&mu);
            k += lanes_run(&ls, fn, SLICE, ended + k);
            pthread_mutex_lock(&mu);
        }
        for (int i = 0; i < k; i++) ended[i]->done = 1;
        if (k) pthread_cond_broadcast(&ended_cv);
    }
    return NULL;
}

/* A forked child has no engine thread, and may hold a copy of a locked mutex. */
static void after_fork_in_child(void) {
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&queued, NULL);
    pthread_cond_init(&ended_cv, NULL);
    head = tail = NULL, engine_pid = 0;
    queued_runs = open_streams = waiting = 0;
}

static void watch_forks(void) { pthread_atfork(NULL, NULL, after_fork_in_child); }

/* Queue `r` for the engine (started on first use) and return at once. Returns 0,
 * or -1 when there is no vector build or no thread could be started. */
int md5lanes_submit(struct md5lanes_run *r) {
    blocks_fn fn = pick();
    if (!fn) return -1;
    pthread_mutex_lock(&mu);
    if (engine_pid != getpid()) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, watch_forks);
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, engine, (void *)fn);
        pthread_attr_destroy(&attr);
        if (failed) {
            pthread_mutex_unlock(&mu);
            return -1;
        }
        engine_pid = getpid();
    }
    r->next = NULL, r->done = 0;
    if (tail) tail->next = r; else head = r;
    tail = r, queued_runs++;
    pthread_cond_signal(&queued);
    pthread_mutex_unlock(&mu);
    return 0;
}

/* Block until the engine has hashed `r`. */
void md5lanes_wait(struct md5lanes_run *r) {
    pthread_mutex_lock(&mu);
    if (!r->done) {
        waiting++;
        pthread_cond_signal(&queued);
        while (!r->done) pthread_cond_wait(&ended_cv, &mu);
        waiting--;
    }
    pthread_mutex_unlock(&mu);
}

/* A stream starts (+1) or ends (-1): the engine waits for a run of each open stream
 * before it hashes unasked. A stream never closed only makes the engine wait for
 * the next thread that needs a run. Returns the count of open streams. */
int md5lanes_streams(int change) {
    pthread_mutex_lock(&mu);
    int now = open_streams += change;
    pthread_cond_signal(&queued);
    pthread_mutex_unlock(&mu);
    return now;
}

#else
struct md5lanes_run;
int md5lanes_level(void) { return 0; }
int md5lanes_limit(int cap) { (void)cap; return 0; }
int md5lanes_hash(struct md5lanes_run *runs, int n) { (void)runs, (void)n; return -1; }
int md5lanes_submit(struct md5lanes_run *r) { (void)r; return -1; }
void md5lanes_wait(struct md5lanes_run *r) { (void)r; }
int md5lanes_streams(int change) { (void)change; return 0; }
#endif
