/* The host interface under faabric's MPI library: what the runtime provides to a rank.
 *
 * Every function here is imported from the wasm module "faabric_mpi". Ranks are world ranks
 * (0..size-1); `ctx` is a communicator context id chosen by the library (any int32 >= 0):
 * messages only match receives with the same ctx. The host knows nothing of communicators,
 * datatypes or collectives; the library builds those on these calls.
 *
 * Requests live in guest memory. The host fills a request's fields and sets `done` last, from
 * any thread, at any time after the call that posted it; the guest must not move or reuse a
 * request (or its buffer) until it sees done == 1. A rank waits for completions by reading
 * `fmpi_completions()`, re-checking its requests' `done` flags, then calling
 * `fmpi_wait_change(seen)`.
 *
 * Failures of other ranks, timeouts and bad pointers never return here: the host stops the
 * calling rank with a message naming the cause (the rank's granule ends as a trap).
 */
#ifndef FAABRIC_FMPI_HOST_H
#define FAABRIC_FMPI_HOST_H

#include <stdint.h>

#define FMPI_IMPORT(name) __attribute__((import_module("faabric_mpi"), import_name(#name)))

#define FMPI_ANY_SOURCE (-1)
#define FMPI_ANY_TAG (-1)

/* Return codes of fmpi_isend / fmpi_irecv / fmpi_iprobe and values of fmpi_req.error. */
#define FMPI_OK 0
#define FMPI_E_RANK 1     /* dest/source is not a rank of the world */
#define FMPI_E_TAG 2      /* tag < 0 (other than FMPI_ANY_TAG on receives) */
#define FMPI_E_COUNT 3    /* negative length */
#define FMPI_E_TRUNCATE 4 /* the message was longer than the receive buffer (req.error only) */
#define FMPI_E_WIN 5      /* one-sided: the target exposes no such window (req.error only) */
#define FMPI_E_RANGE 6    /* one-sided: a segment lies outside the target's window (ditto) */
#define FMPI_E_SYNC 7     /* one-sided: a lock given back that was not held (ditto) */

/* Contexts from here up are the host's own: messages must not use them. */
#define FMPI_RESERVED_CTX 0x40000000

typedef struct fmpi_req {
    volatile int32_t done; /* 0 while pending; 1 once complete (written last) */
    int32_t source;        /* receives and probes: world rank of the sender */
    int32_t tag;           /* receives and probes: tag of the message */
    int32_t length;        /* receives and probes: length of the message in bytes (the full
                              length even when truncated: only min(length, cap) were written) */
    int32_t error;         /* FMPI_OK or FMPI_E_TRUNCATE */
    int32_t handle;        /* the host's id for the request; 0 once complete */
} fmpi_req;

/* World. */
FMPI_IMPORT(fmpi_init) int32_t fmpi_init(void);         /* 0; marks the rank initialised */
FMPI_IMPORT(fmpi_finalize) int32_t fmpi_finalize(void); /* 0; marks the rank finalised */
FMPI_IMPORT(fmpi_rank) int32_t fmpi_rank(void);
FMPI_IMPORT(fmpi_size) int32_t fmpi_size(void);
/* Index of the host running `rank`: hosts are numbered 0.. in order of their lowest rank,
   so rank 0's host is 0. Returns -1 for a rank outside the world. */
FMPI_IMPORT(fmpi_host_of) int32_t fmpi_host_of(int32_t rank);
FMPI_IMPORT(fmpi_host_count) int32_t fmpi_host_count(void);
/* Writes the name of this rank's worker (no NUL) into buf; returns its full length. */
FMPI_IMPORT(fmpi_processor_name) int32_t fmpi_processor_name(char *buf, int32_t cap);
/* Fails the whole app: every other rank's blocked or later MPI call stops naming this rank.
   Returns; the caller then exits with `code` (the library's fm_abort does both). */
FMPI_IMPORT(fmpi_abort) void fmpi_abort(int32_t code);

/* Point-to-point. `sync` = 1 completes the send only once a receive has matched it
   (MPI_Ssend); otherwise the host may complete it as soon as the buffer may be reused. */
FMPI_IMPORT(fmpi_isend)
int32_t fmpi_isend(int32_t ctx, int32_t dest, int32_t tag, const void *buf, int32_t len,
                   int32_t sync, fmpi_req *req);
/* source/tag may be FMPI_ANY_SOURCE/FMPI_ANY_TAG. Matching follows MPI: receives match in the
   order they were posted, messages from one sender in the order they were sent. */
FMPI_IMPORT(fmpi_irecv)
int32_t fmpi_irecv(int32_t ctx, int32_t source, int32_t tag, void *buf, int32_t cap,
                   fmpi_req *req);
/* 1 and `status` filled (source, tag, length; done = 1) if a matching message has arrived
   and no receive took it yet; else 0. With blocking = 1 waits until one has. */
FMPI_IMPORT(fmpi_iprobe)
int32_t fmpi_iprobe(int32_t ctx, int32_t source, int32_t tag, int32_t blocking,
                    fmpi_req *status);
/* Cancels a pending receive: 1 if it was cancelled (it will never complete), 0 if it had
   already matched (it completes as usual). Sends cannot be cancelled (returns 0). */
FMPI_IMPORT(fmpi_cancel) int32_t fmpi_cancel(fmpi_req *req);

/* Completion counter of this rank: increases whenever one of its requests completes. */
FMPI_IMPORT(fmpi_completions) int32_t fmpi_completions(void);
/* Blocks until the counter differs from `seen`; returns the new value. */
FMPI_IMPORT(fmpi_wait_change) int32_t fmpi_wait_change(int32_t seen);

/* Migration. Rank 0 asks at each migration point whether the runtime wants the app's ranks
   moved: the epoch of that move (> 0), or 0. `at_barrier` = 1 for the point after a barrier
   on the world (the host then answers only every K-th time, K being the app's period),
   0 for an explicit faabric_migration_point(). */
FMPI_IMPORT(fmpi_migration_epoch) int32_t fmpi_migration_epoch(int32_t at_barrier);
/* Every rank calls this with the epoch rank 0 got, at the same point. Ranks the move takes
   elsewhere leave through it and come back out of it on their new host, with their memory,
   call stack and pending requests; `area` (`size` bytes of guest memory) holds their call
   stack meanwhile. Returns 1 if the placement changed, 0 if the move was called off. */
FMPI_IMPORT(fmpi_migrate) int32_t fmpi_migrate(int32_t epoch, void *area, int32_t size);

/* One-sided communication. A window is a context id the library agreed on for it; each rank
   exposes [base, base + size) of its memory under it, and the host serves other ranks'
   operations on it without this rank calling in: until fmpi_win_withdraw they may read and
   write that memory at any time. */
FMPI_IMPORT(fmpi_win_expose) int32_t fmpi_win_expose(int32_t win, void *base, int32_t size);
FMPI_IMPORT(fmpi_win_withdraw) int32_t fmpi_win_withdraw(int32_t win);

#define FMPI_RMA_PUT 1
#define FMPI_RMA_GET 2
/* Writes (PUT) or reads (GET) world rank `target`'s window `win`: `segs` holds `nsegs`
   (offset, length) int32 pairs in that window, and `data` their bytes one after the other
   (PUT: read at the call; GET: written before done). `req` completes (error FMPI_OK,
   FMPI_E_WIN or FMPI_E_RANGE) once the target's memory was written or read. */
FMPI_IMPORT(fmpi_rma)
int32_t fmpi_rma(int32_t kind, int32_t win, int32_t target, const int32_t *segs, int32_t nsegs,
                 void *data, fmpi_req *req);

#define FMPI_LOCK_SHARED 1
#define FMPI_LOCK_EXCLUSIVE 2
#define FMPI_LOCK_UPDATE 3 /* serialises read-modify-write cycles; independent of the others */
/* Asks for (acquire = 1) or gives back (0) a lock of `kind` on `target`'s window `win`.
   `req` completes once it is granted (first come, first served; shared locks together) or
   given back (error FMPI_E_SYNC if it was not held). */
FMPI_IMPORT(fmpi_win_lock)
int32_t fmpi_win_lock(int32_t win, int32_t target, int32_t kind, int32_t acquire, fmpi_req *req);

#endif
