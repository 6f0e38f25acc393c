/* MPI calls faabric declares but does not implement. Each prints
 * "faabric MPI: MPI_Xxx is not supported" and raises MPI_ERR_UNSUPPORTED_OPERATION on
 * MPI_COMM_WORLD (fatal unless the program chose MPI_ERRORS_RETURN). None may pretend to work.
 */
#include "fm_internal.h"

#define UNSUPPORTED(name, params)                                                              \
    int name params { return fm_unsupported(#name); }

UNSUPPORTED(MPI_Win_allocate_shared, (MPI_Aint size, int disp_unit, MPI_Info info,
                                      MPI_Comm comm, void *baseptr, MPI_Win *win))
UNSUPPORTED(MPI_Win_create_dynamic, (MPI_Info info, MPI_Comm comm, MPI_Win *win))
UNSUPPORTED(MPI_Win_attach, (MPI_Win win, void *base, MPI_Aint size))
UNSUPPORTED(MPI_Win_detach, (MPI_Win win, const void *base))
UNSUPPORTED(MPI_Win_post, (MPI_Group group, int assert, MPI_Win win))
UNSUPPORTED(MPI_Win_start, (MPI_Group group, int assert, MPI_Win win))
UNSUPPORTED(MPI_Win_complete, (MPI_Win win))
UNSUPPORTED(MPI_Win_wait, (MPI_Win win))
UNSUPPORTED(MPI_Rput, (const void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
                       int target_rank, MPI_Aint target_disp, int target_count,
                       MPI_Datatype target_datatype, MPI_Win win, MPI_Request *request))
UNSUPPORTED(MPI_Rget, (void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
                       int target_rank, MPI_Aint target_disp, int target_count,
                       MPI_Datatype target_datatype, MPI_Win win, MPI_Request *request))
UNSUPPORTED(MPI_Igather, (const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                          void *recvbuf, int recvcount, MPI_Datatype recvtype, int root,
                          MPI_Comm comm, MPI_Request *request))
UNSUPPORTED(MPI_Iscatter, (const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                           void *recvbuf, int recvcount, MPI_Datatype recvtype, int root,
                           MPI_Comm comm, MPI_Request *request))
UNSUPPORTED(MPI_Alltoallw, (const void *sendbuf, const int sendcounts[], const int sdispls[],
                            const MPI_Datatype sendtypes[], void *recvbuf,
                            const int recvcounts[], const int rdispls[],
                            const MPI_Datatype recvtypes[], MPI_Comm comm))
UNSUPPORTED(MPI_Comm_spawn, (const char *command, char *argv[], int maxprocs, MPI_Info info,
                             int root, MPI_Comm comm, MPI_Comm *intercomm,
                             int array_of_errcodes[]))
UNSUPPORTED(MPI_Intercomm_create, (MPI_Comm local_comm, int local_leader, MPI_Comm peer_comm,
                                   int remote_leader, int tag, MPI_Comm *newintercomm))
UNSUPPORTED(MPI_Graph_create, (MPI_Comm comm_old, int nnodes, const int index[],
                               const int edges[], int reorder, MPI_Comm *comm_graph))
UNSUPPORTED(MPI_Mprobe, (int source, int tag, MPI_Comm comm, MPI_Message *message,
                         MPI_Status *status))
UNSUPPORTED(MPI_Mrecv, (void *buf, int count, MPI_Datatype datatype, MPI_Message *message,
                        MPI_Status *status))
UNSUPPORTED(MPI_Type_create_subarray, (int ndims, const int sizes[], const int subsizes[],
                                       const int starts[], int order, MPI_Datatype oldtype,
                                       MPI_Datatype *newtype))
UNSUPPORTED(MPI_Info_create, (MPI_Info *info))
UNSUPPORTED(MPI_Info_set, (MPI_Info info, const char *key, const char *value))
UNSUPPORTED(MPI_Info_free, (MPI_Info *info))
UNSUPPORTED(MPI_File_open, (MPI_Comm comm, const char *filename, int amode, MPI_Info info,
                            MPI_File *fh))
