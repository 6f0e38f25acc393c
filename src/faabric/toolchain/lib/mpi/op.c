/* Reduction operations: user operations (MPI_Op_create/free) and applying any operation to
 * elements of a datatype, including derived types made of one predefined type.
 *
 * User functions are called through their function pointer (a table call in wasm). Must not
 * communicate: collectives call fm_op_apply on data they already hold.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

#define FM_FIRST_USER_OP 16
#define FM_MAX_USER_OPS 256

typedef struct user_op {
    MPI_User_function *fn;
    int commute;
} user_op;

static user_op user_ops[FM_MAX_USER_OPS];

static user_op *user_get(MPI_Op op) {
    int i = op - FM_FIRST_USER_OP;
    if (i < 0 || i >= FM_MAX_USER_OPS || user_ops[i].fn == NULL)
        return NULL;
    return &user_ops[i];
}

int fm_op_commutes(MPI_Op op) {
    user_op *u = user_get(op);
    return u ? u->commute : 1;
}

int fm_op_check(MPI_Op op, MPI_Datatype type) {
    fm_type *t = fm_type_get(type);
    if (t == NULL || !t->committed)
        return MPI_ERR_TYPE;
    if (user_get(op) != NULL)
        return MPI_SUCCESS;
    if (t->base == MPI_DATATYPE_NULL && t->size > 0)
        return MPI_ERR_OP;
    if (t->size == 0)
        return op >= MPI_MAX && op <= MPI_MINLOC ? MPI_SUCCESS : MPI_ERR_OP;
    return fm_kernel_for(op, t->base) ? MPI_SUCCESS : MPI_ERR_OP;
}

int fm_op_apply(MPI_Op op, MPI_Datatype type, const void *in, void *inout, int count) {
    user_op *u = user_get(op);
    if (u != NULL) {
        u->fn((void *)in, inout, &count, &type);
        return MPI_SUCCESS;
    }
    int err = fm_op_check(op, type);
    fm_type *t = fm_type_get(type);
    if (err != MPI_SUCCESS || count == 0 || t->size == 0)
        return err;
    fm_kernel k = fm_kernel_for(op, t->base);
    if (t->predefined) {
        k(in, inout, count);
        return MPI_SUCCESS;
    }
    for (int i = 0; i < count; i++) {
        MPI_Aint at = i * t->extent;
        for (int b = 0; b < t->nblocks; b++)
            k((const char *)in + at + t->blocks[b].disp, (char *)inout + at + t->blocks[b].disp,
              t->blocks[b].n);
    }
    return MPI_SUCCESS;
}

int MPI_Op_create(MPI_User_function *user_fn, int commute, MPI_Op *op) {
    if (user_fn == NULL || op == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Op_create");
    for (int i = 0; i < FM_MAX_USER_OPS; i++) {
        if (user_ops[i].fn == NULL) {
            user_ops[i] = (user_op){user_fn, commute != 0};
            *op = FM_FIRST_USER_OP + i;
            return MPI_SUCCESS;
        }
    }
    return fm_raise(MPI_COMM_WORLD, MPI_ERR_NO_MEM, "MPI_Op_create");
}

int MPI_Op_free(MPI_Op *op) {
    user_op *u = op ? user_get(*op) : NULL;
    if (u == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_OP, "MPI_Op_free");
    memset(u, 0, sizeof *u);
    *op = MPI_OP_NULL;
    return MPI_SUCCESS;
}

int MPI_Op_commutative(MPI_Op op, int *commute) {
    if (commute == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Op_commutative");
    if (user_get(op) == NULL && (op < MPI_MAX || op > MPI_NO_OP))
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_OP, "MPI_Op_commutative");
    *commute = fm_op_commutes(op);
    return MPI_SUCCESS;
}

int MPI_Reduce_local(const void *inbuf, void *inoutbuf, int count, MPI_Datatype datatype,
                     MPI_Op op) {
    int err = fm_op_check(op, datatype);
    if (err == MPI_SUCCESS && count < 0)
        err = MPI_ERR_COUNT;
    if (err == MPI_SUCCESS)
        err = fm_op_apply(op, datatype, inbuf, inoutbuf, count);
    return fm_raise(MPI_COMM_WORLD, err, "MPI_Reduce_local");
}
