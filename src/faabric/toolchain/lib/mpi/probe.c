/* MPI_Probe and MPI_Iprobe: asking the host whether a matching message has arrived.
 *
 * Must not receive: a probed message stays queued for the next matching receive.
 */
#include "fm_internal.h"

static int probe(int source, int tag, MPI_Comm comm, int blocking, int *flag,
                 MPI_Status *status) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return MPI_ERR_COMM;
    if (source != MPI_PROC_NULL && source != MPI_ANY_SOURCE && (source < 0 || source >= c->size))
        return MPI_ERR_RANK;
    if (tag != MPI_ANY_TAG && (tag < 0 || tag > FM_TAG_UB))
        return MPI_ERR_TAG;
    fm_status_empty(status);
    if (source == MPI_PROC_NULL) {
        *flag = 1;
        if (status != MPI_STATUS_IGNORE)
            status->MPI_SOURCE = MPI_PROC_NULL;
        return MPI_SUCCESS;
    }
    fmpi_req found = {0};
    int world = source == MPI_ANY_SOURCE ? FMPI_ANY_SOURCE : c->world[source];
    *flag = fmpi_iprobe(c->ctx, world, tag == MPI_ANY_TAG ? FMPI_ANY_TAG : tag, blocking,
                        &found) == 1;
    if (*flag && status != MPI_STATUS_IGNORE) {
        status->MPI_SOURCE = fm_comm_source(c, found.source);
        status->MPI_TAG = found.tag;
        status->fm_count = found.length;
    }
    return MPI_SUCCESS;
}

int MPI_Probe(int source, int tag, MPI_Comm comm, MPI_Status *status) {
    int flag = 0;
    return fm_raise(comm, probe(source, tag, comm, 1, &flag, status), "MPI_Probe");
}

int MPI_Iprobe(int source, int tag, MPI_Comm comm, int *flag, MPI_Status *status) {
    if (flag == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Iprobe");
    return fm_raise(comm, probe(source, tag, comm, 0, flag, status), "MPI_Iprobe");
}
