/* Buffered sends: MPI_Buffer_attach/detach, MPI_Bsend and MPI_Ibsend.
 *
 * faabric copies each buffered message into memory of its own (malloc) rather than into the
 * attached buffer, but keeps MPI's rule that a message larger than the attached buffer is an
 * error (MPI_ERR_BUFFER). Detach waits until every buffered message has been delivered.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

static void *attached;
static int attached_size;

int MPI_Buffer_attach(void *buffer, int size) {
    if (attached != NULL || size < 0 || (buffer == NULL && size > 0))
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_BUFFER, "MPI_Buffer_attach");
    attached = buffer ? buffer : (void *)&attached;
    attached_size = size;
    return MPI_SUCCESS;
}

int MPI_Buffer_detach(void *buffer_addr, int *size) {
    if (buffer_addr == NULL || size == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Buffer_detach");
    fm_requests_drain();
    void *was = attached == (void *)&attached ? NULL : attached;
    memcpy(buffer_addr, &was, sizeof was);
    *size = attached_size;
    attached = NULL;
    attached_size = 0;
    return MPI_SUCCESS;
}

/* Posts a send of a private copy of the data; the request owns the copy. */
static int buffered(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
                    MPI_Comm comm, MPI_Request *out) {
    fm_type *t = fm_type_get(datatype);
    int bytes = 0;
    if (t == NULL || !t->committed)
        return MPI_ERR_TYPE;
    if (fm_type_bytes(t, count, &bytes) != MPI_SUCCESS)
        return MPI_ERR_COUNT;
    if (attached == NULL || bytes > attached_size)
        return MPI_ERR_BUFFER;
    void *copy = fm_alloc((size_t)bytes);
    if (copy == NULL)
        return MPI_ERR_NO_MEM;
    fm_pack(buf, count, t, copy);
    fm_comm *c = fm_comm_get(comm);
    int err = c == NULL ? MPI_ERR_COMM : fm_request_new(FM_REQ_SEND, comm, out);
    if (err != MPI_SUCCESS) {
        free(copy);
        return err;
    }
    fm_request *r = fm_request_get(*out);
    *r = (fm_request){.kind = FM_REQ_SEND, .comm = comm, .sendbuf = copy, .count = bytes,
                      .type = MPI_BYTE, .peer = dest, .tag = tag};
    if (dest != MPI_PROC_NULL && (dest < 0 || dest >= c->size))
        err = MPI_ERR_RANK;
    else if (tag < 0 || tag > FM_TAG_UB)
        err = MPI_ERR_TAG;
    else
        err = fm_request_post(r);
    if (err != MPI_SUCCESS) {
        fm_request_release(out);
        free(copy);
        return err;
    }
    r->tmp = copy;
    return MPI_SUCCESS;
}

int MPI_Bsend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
              MPI_Comm comm) {
    MPI_Request handle;
    int err = buffered(buf, count, datatype, dest, tag, comm, &handle);
    if (err == MPI_SUCCESS)
        fm_request_get(handle)->freed = 1; /* delivered in the background */
    return fm_raise(comm, err, "MPI_Bsend");
}

int MPI_Ibsend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
               MPI_Comm comm, MPI_Request *request) {
    if (request == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Ibsend");
    return fm_raise(comm, buffered(buf, count, datatype, dest, tag, comm, request),
                    "MPI_Ibsend");
}
