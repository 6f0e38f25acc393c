/* Internal declarations shared by the files of faabric's MPI library.
 *
 * Names starting with fm_ are private to the library; programs only see mpi.h. This header
 * must not declare anything the host provides (that is fmpi_host.h) and must not hold state.
 */
#ifndef FAABRIC_FM_INTERNAL_H
#define FAABRIC_FM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include "fmpi_host.h"

#define FM_TAG_UB 0x7fffffff

/* ---- errors (errors.c) ---- */
/* Raises `code` on `comm` for the call `fn`: runs the comm's error handler (fatal by default:
   one line on stderr, then fmpi_abort(1)) and returns the code for MPI_ERRORS_RETURN. */
int fm_raise(MPI_Comm comm, int code, const char *fn);
/* Checks that MPI_Init ran and MPI_Finalize did not; MPI_SUCCESS or MPI_ERR_OTHER. */
int fm_check_init(const char *fn);
const char *fm_error_text(int code);
/* A library bug or exhausted memory where MPI has no way to report it: one line, abort. */
/* Ends the whole app: fails the world for every rank (fmpi_abort), then exits with `code`. */
_Noreturn void fm_abort(int code);
void fm_fatal(const char *what);
int fm_errhandler_valid(MPI_Errhandler handler);
void fm_errhandler_retain(MPI_Errhandler handler);
void fm_errhandler_release(MPI_Errhandler handler);

/* ---- world (world.c) ---- */
int fm_initialised(void);
int fm_finalised(void);

/* ---- communicators (comm.c) ---- */
typedef struct fm_cart {
    int ndims;
    int *dims;
    int *periods;
} fm_cart;

typedef struct fm_comm {
    int size;
    int rank;
    int *world;      /* comm rank -> world rank */
    int *from_world; /* world rank -> comm rank, or -1 */
    int *host;       /* comm rank -> host index (fmpi_host_of) */
    int ctx;         /* user point-to-point context; ctx + 1 carries collectives */
    MPI_Errhandler errhandler;
    fm_cart *cart;   /* NULL unless a Cartesian communicator */
    char name[MPI_MAX_OBJECT_NAME];
} fm_comm;

fm_comm *fm_comm_get(MPI_Comm comm); /* NULL for an invalid or null handle */
void fm_comm_refresh_hosts(void);     /* ranks moved: ask the host where each one runs now */
int fm_migration_point(int at_barrier, int epoch); /* migrate.c; epoch: rank 0's, or -1 */
int fm_world_setup(void);
/* Makes a communicator of the world ranks `world[0..size)` (copied) with context `ctx`;
   returns its handle or MPI_COMM_NULL when memory runs out. */
MPI_Comm fm_comm_make(const int *world, int size, int ctx, MPI_Errhandler errhandler);
/* A new context agreed by every member of `comm` (collective). */
int fm_comm_agree_ctx(fm_comm *c, int *ctx);
int fm_comm_next_ctx(void);           /* this process's next free context */
void fm_comm_agree_ctx_set(int agreed); /* records that `agreed` is now taken */
int fm_comm_source(const fm_comm *c, int world_rank); /* world rank -> comm rank */
/* Gives `c` a Cartesian topology (copies dims/periods); MPI_SUCCESS or MPI_ERR_NO_MEM. */
int fm_cart_attach(fm_comm *c, int ndims, const int *dims, const int *periods);

/* ---- groups (group.c) ---- */
int fm_group_make(const int *world, int size, MPI_Group *out);
const int *fm_group_world(MPI_Group group, int *size);

/* ---- datatypes (datatype.c, datatype_build.c, pack.c) ---- */
typedef struct fm_seg {
    MPI_Aint disp; /* offset from the element start */
    int len;       /* bytes */
    int esz;       /* size of the basic elements in this run (for MPI_Get_elements) */
} fm_seg;

typedef struct fm_block {
    MPI_Aint disp; /* offset of the first base element */
    int n;         /* number of consecutive base elements (stride: the base's extent) */
} fm_block;

typedef struct fm_type {
    int predefined;
    int committed;
    int refs;
    int size;                 /* bytes of data in one element */
    int align;                /* strictest alignment of its basic types (struct padding) */
    MPI_Aint lb, extent;      /* the extent used to place consecutive elements */
    MPI_Aint true_lb, true_ub;
    int nsegs;
    fm_seg *segs;             /* the type map as runs of bytes, in type-map order */
    int nelems;               /* basic elements in one element */
    MPI_Datatype base;        /* predefined type every element is made of, or 0 if mixed */
    int nblocks;
    fm_block *blocks;         /* where the base elements are (only when base != 0) */
} fm_type;

/* The C layouts of the predefined pair types (MAXLOC/MINLOC). */
typedef struct { float v; int i; } fm_float_int;
typedef struct { double v; int i; } fm_double_int;
typedef struct { long v; int i; } fm_long_int;
typedef struct { int v; int i; } fm_2int;
typedef struct { short v; int i; } fm_short_int;
typedef struct { long double v; int i; } fm_long_double_int;

#define FM_PREDEFINED_TYPES 39 /* handles 1..38 */
#define FM_FIRST_DERIVED_TYPE 64

fm_type *fm_type_get(MPI_Datatype type); /* NULL for an invalid or null handle */
/* MPI_SUCCESS, or MPI_ERR_TYPE for an invalid or uncommitted type. */
int fm_type_check(MPI_Datatype type);
/* count * size in bytes; MPI_ERR_COUNT if negative or over 2 GiB. */
int fm_type_bytes(const fm_type *t, int count, int *bytes);
MPI_Datatype fm_type_register(fm_type *t);

/* Data of `count` elements at `buf`, contiguous: `buf` itself when the layout allows, else
   a packed copy in *tmp (caller frees). NULL with *tmp == NULL when memory runs out. */
const void *fm_packed_view(const void *buf, int count, const fm_type *t, void **tmp);
void fm_pack(const void *buf, int count, const fm_type *t, void *out);
/* Unpacks the first `bytes` bytes of packed data into `count` elements at `buf`. */
void fm_unpack(const void *in, int bytes, int count, const fm_type *t, void *buf);
/* True when `count` elements at `buf` are `count * size` contiguous bytes at buf. */
int fm_is_contiguous(const fm_type *t, int count);
/* Bytes from the start of the first to the end of the last element (for raw copies). */
size_t fm_span(const fm_type *t, int count);
/* Bytes a raw-layout buffer of `count` elements needs: the span, or more when operations on
   the type write whole elements (pair types write their padding). */
size_t fm_raw_bytes(const fm_type *t, int count);
/* Copies the data (not the gaps) of `count` elements from src to dst, both laid out as t. */
void fm_copy(void *dst, const void *src, int count, const fm_type *t);
int fm_elements(const fm_type *t, int bytes);

/* ---- operations (op.c, op_kernels.c) ---- */
/* inout[i] = in[i] op inout[i] for `count` elements laid out as `type` (MPI's rule). */
int fm_op_apply(MPI_Op op, MPI_Datatype type, const void *in, void *inout, int count);
int fm_op_check(MPI_Op op, MPI_Datatype type); /* MPI_SUCCESS or MPI_ERR_OP/TYPE */
int fm_op_commutes(MPI_Op op);
typedef void (*fm_kernel)(const void *in, void *inout, int n);
/* Kernel of a predefined op on a predefined type, or NULL when MPI does not define it. */
fm_kernel fm_kernel_for(MPI_Op op, MPI_Datatype type);

/* ---- requests and waiting (request.c, wait.c) ---- */
enum { FM_REQ_SEND = 1, FM_REQ_RECV = 2, FM_REQ_NULLOP = 3, FM_REQ_COLL = 4 };

/* A non-blocking collective in flight (icoll.c): its messages, and what to do once they are
   all done. Received blocks sit packed in `in`, one `slot` per rank in rank order (this
   rank's own included), or a single slot when `only` names the one rank sending. */
enum { FM_ICOLL_SYNC = 1, FM_ICOLL_BLOCKS, FM_ICOLL_REDUCE };
typedef struct fm_icoll {
    int kind;
    fmpi_req *msgs; /* never moved while the host may write them */
    int nmsgs;
    char *out;      /* packed outgoing data (owned) */
    char *in;       /* packed incoming blocks (owned) */
    int slot;       /* bytes of one block */
    int rank, size;
    int only;       /* BLOCKS: -1 for one block per rank, else the single sender */
    void *recvbuf;
    int count;      /* elements of one block */
    MPI_Datatype type;
    MPI_Op op;
} fm_icoll;

typedef struct fm_request {
    fmpi_req host;     /* must not move while pending: requests are never reallocated */
    int kind;
    int active;        /* posted and not yet completed by a wait/test */
    int persistent;
    int freed;         /* MPI_Request_free called while still pending */
    MPI_Comm comm;
    void *buf;         /* receive: user buffer to unpack into */
    int count;
    MPI_Datatype type;
    void *tmp;         /* packed copy (send) or packed landing buffer (receive) */
    int cap;           /* receive: bytes the buffer holds */
    int peer, tag, sync; /* persistent requests: what to post at MPI_Start */
    const void *sendbuf;
    int cancelled;
    fm_icoll *coll;    /* FM_REQ_COLL: the collective's messages and finishing work */
} fm_request;

fm_request *fm_request_get(MPI_Request handle);
int fm_request_new(int kind, MPI_Comm comm, MPI_Request *handle);
/* Releases the request; clears *handle. */
void fm_request_release(MPI_Request *handle);
/* Posts a (persistent or fresh) request; MPI error code. */
int fm_request_post(fm_request *r);
/* Fills `status` from a completed request, unpacks and frees buffers; returns the error. */
int fm_request_complete(fm_request *r, MPI_Status *status);
void fm_status_empty(MPI_Status *status);
/* The request table, for draining: its length and the request in slot `index` (or NULL). */
int fm_request_count(void);
fm_request *fm_request_at(int index, MPI_Request *handle);
/* Blocks until every request in reqs[0..n) is done. */
void fm_wait_all(fmpi_req *const *reqs, int n);
/* Blocks until one is done; returns its index. */
int fm_wait_any(fmpi_req *const *reqs, int n);
/* Shared by wait.c and completion.c. */
int fm_done_index(fmpi_req *const *reqs, int n, int want_all); /* -1: not yet */
int fm_lookup(MPI_Request handle, fm_request **r); /* *r NULL for null/inactive handles */
int fm_finish(MPI_Request *handle, fm_request *r, MPI_Status *status);
int fm_collect(int n, const MPI_Request handles[], fmpi_req **hosts, fm_request **rs);
int fm_with_arrays(int n, fmpi_req ***hosts, fm_request ***rs);
MPI_Status *fm_status_at(MPI_Status statuses[], int i);
/* Waits for requests freed by the program while pending (at MPI_Finalize). */
void fm_requests_drain(void);
int fm_host_error(int code); /* FMPI_E_* -> MPI error class */

/* ---- non-blocking collectives (icoll.c) ---- */
fm_icoll *fm_icoll_new(int kind, int nmsgs); /* room for nmsgs messages; NULL: no memory */
void fm_icoll_free(fm_icoll *k);
fmpi_req *fm_icoll_msg(fm_icoll *k);         /* the next message slot */
int fm_icoll_start(fm_icoll *k, MPI_Comm comm, MPI_Request *request);
void fm_icoll_poll(void);                    /* marks finished collectives done */
int fm_icoll_finish(fm_request *r);          /* unpacks or reduces; frees r->coll */

/* ---- internal messaging for collectives (coll_util.c) ---- */
enum {
    FM_TAG_BARRIER = 1, FM_TAG_BCAST, FM_TAG_REDUCE, FM_TAG_GATHER, FM_TAG_SCATTER,
    FM_TAG_ALLTOALL, FM_TAG_SCAN, FM_TAG_GATHERV, FM_TAG_SCATTERV, FM_TAG_RING, FM_TAG_ICOLL,
    FM_TAG_WIN
};
/* Blocking collective-context send/receive of raw bytes between comm ranks. */
void fm_csend(const fm_comm *c, int to, int tag, const void *buf, int len);
void fm_crecv(const fm_comm *c, int from, int tag, void *buf, int len);
void fm_cisend(const fm_comm *c, int to, int tag, const void *buf, int len, fmpi_req *r);
void fm_cirecv(const fm_comm *c, int from, int tag, void *buf, int len, fmpi_req *r);
/* Sends `out` to `to` and receives `in` from `from` at once (see fm_receive_first). */
void fm_cexchange(const fm_comm *c, int tag, int to, const void *out, int outlen, int from,
                  void *in, int inlen);
/* 1 when a receive from comm rank `from` (or a wildcard, < 0) should be posted first. */
int fm_receive_first(const fm_comm *c, int from);

/* Member lists for locality-aware collectives: index 0 is the tree's root. */
typedef struct fm_plan {
    int *leaders;  /* one rank per host; the root's host is represented by the root */
    int nleaders;
    int *local;    /* ranks on my host, my host's leader first */
    int nlocal;
} fm_plan;
int fm_plan_make(const fm_comm *c, int root, fm_plan *p);
void fm_plan_free(fm_plan *p);
void fm_tree_bcast(const fm_comm *c, const int *members, int n, int tag, void *buf, int len);

/* ---- collective building blocks (coll_reduce.c, coll_gather.c) ---- */
/* Reduces `count` elements (raw layout, fm_span bytes) of every rank into `acc` at `root`;
   `acc` holds this rank's contribution on entry. */
int fm_reduce_raw(const fm_comm *c, void *acc, int count, MPI_Datatype type, MPI_Op op,
                  int root);
void fm_bcast_raw(const fm_comm *c, void *buf, int len, int root);
/* Gathers `len` bytes from every rank into `all` (size * len bytes, rank order) at root. */
void fm_gather_raw(const fm_comm *c, const void *mine, int len, void *all, int root);
/* Argument checks shared by the reductions (not raised). */
int fm_reduce_args(MPI_Comm comm, int count, MPI_Datatype type, MPI_Op op, fm_comm **c,
                   fm_type **t);
/* A raw-layout copy of `count` elements of src in a new *block; returns its origin. */
char *fm_raw_copy(const void *src, int count, const fm_type *t, char **block);
void fm_scatter_raw(const fm_comm *c, const void *all, int len, void *mine, int root);

/* ---- large reductions as rings (coll_ring.c), small ones by doubling (coll_small.c) ---- */
/* A predefined type without gaps: receives may land straight in the user's buffer. */
int fm_dense(const fm_type *t);
/* True when an allreduce may use recursive doubling: a power-of-two communicator with every
   rank on its own host, a dense type and a commutative operation. */
int fm_doubling_applies(const fm_comm *c, MPI_Datatype type, MPI_Op op);
int fm_allreduce_doubling(const fm_comm *c, const void *src, void *dst, int count,
                          MPI_Datatype type, MPI_Op op);
/* True when a reduction of `count` elements may take the ring algorithms: large enough, a
   dense predefined type and a commutative operation. Same answer on every rank. */
int fm_ring_applies(const fm_comm *c, int count, MPI_Datatype type, MPI_Op op);
/* dst = the combination of every rank's src (src == dst allowed); MPI error code. */
int fm_allreduce_ring(const fm_comm *c, const void *src, void *dst, int count,
                      MPI_Datatype type, MPI_Op op);
/* As above, the result only in the root's dst (ignored elsewhere). */
int fm_reduce_ring(const fm_comm *c, const void *src, void *dst, int count, MPI_Datatype type,
                   MPI_Op op, int root);

/* ---- batches of typed collective messages (coll_batch.c) ---- */
typedef struct fm_landing {
    void *tmp;         /* packed copy (send) or landing buffer (receive) */
    void *dst;         /* receive through tmp: where to unpack */
    int count;
    const fm_type *t;
} fm_landing;

typedef struct fm_batch {
    fmpi_req *reqs;
    fmpi_req **ptrs;
    fm_landing *lands;
    int n;
} fm_batch;

int fm_batch_make(fm_batch *b, int cap);
void fm_batch_send(fm_batch *b, const fm_comm *c, int to, int tag, const void *buf, int count,
                   const fm_type *t);
void fm_batch_recv(fm_batch *b, const fm_comm *c, int from, int tag, void *buf, int count,
                   const fm_type *t);
/* Waits, unpacks and frees; MPI_ERR_TRUNCATE if a message was longer than its buffer. */
int fm_batch_finish(fm_batch *b);
/* Copies scount elements of st at src into rcount elements of rt at dst (through packing). */
int fm_local_copy(const void *src, int scount, const fm_type *st, void *dst, int rcount,
                  const fm_type *rt);

/* ---- one-sided communication (win.c, win_sync.c, rma.c, rma_update.c) ---- */
typedef struct fm_rma_op {
    fmpi_req host;       /* never moved while pending */
    int target;          /* comm rank */
    void *tmp;           /* get: landing buffer to unpack from (owned), or NULL */
    void *origin;        /* get through tmp: where to unpack */
    int count;
    MPI_Datatype type;
} fm_rma_op;

typedef struct fm_win {
    MPI_Comm comm;       /* a duplicate of the creating communicator; its ctx names the window */
    void *base;
    MPI_Aint size;
    int disp_unit, flavor, model;
    MPI_Aint *sizes;     /* every rank's window size and displacement unit, by comm rank */
    int *units;
    int *locks;          /* by target: 0, or the MPI_LOCK_* held (negative: MPI_MODE_NOCHECK) */
    fm_rma_op **ops;     /* started, not yet completed */
    int nops, capops;
    void *owned;         /* MPI_Win_allocate's memory */
} fm_win;

fm_win *fm_win_get(MPI_Win win); /* NULL for an invalid or null handle */
int fm_win_open(void);           /* windows this rank has not freed */
int fm_win_ctx(const fm_win *w); /* the window's id for the host */
int fm_win_world(const fm_win *w, int rank); /* comm rank -> world rank */
/* Remembers a started operation until its epoch ends; MPI_ERR_NO_MEM. */
int fm_win_track(fm_win *w, fm_rma_op *op);
/* Waits for the operations to `target` (-1: all); the first error among them. */
int fm_win_complete(fm_win *w, int target);
/* Takes (acquire = 1) or gives back a host lock (FMPI_LOCK_*) on target; waits. */
int fm_win_lock_host(fm_win *w, int target, int kind, int acquire);
/* Byte segments of `count` elements of `t` at target_disp in target's window, merged where
   adjacent; MPI_ERR_RMA_RANGE if outside it. *segs is (offset, length) pairs (caller frees). */
int fm_win_segments(const fm_win *w, int target, MPI_Aint disp, int count, const fm_type *t,
                    int32_t **segs, int *nsegs);
/* A blocking PUT or GET of packed bytes; MPI error code. */
int fm_rma_now(fm_win *w, int kind, int target, const int32_t *segs, int nsegs, void *data);

/* ---- misc ---- */
void *fm_alloc(size_t n); /* malloc that never returns NULL for n == 0 */
int fm_unsupported(const char *fn);

#endif
