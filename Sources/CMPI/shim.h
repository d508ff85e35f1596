// CMPI: OpenMPI's C API plus getters for its handle macros.
//
// Why the shims: in OpenMPI, MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ... are macros that expand to
// casts of the addresses of global structs (`((MPI_Comm)&ompi_mpi_comm_world)`), which the Swift
// importer cannot turn into constants. Each getter returns the handle the macro names.
#ifndef CMPI_SHIM_H
#define CMPI_SHIM_H

#include <mpi.h>

static inline MPI_Comm CMPI_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm CMPI_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype CMPI_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype CMPI_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype CMPI_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype CMPI_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype CMPI_byte(void) { return MPI_BYTE; }
static inline MPI_Op CMPI_op_sum(void) { return MPI_SUM; }
static inline MPI_Op CMPI_op_max(void) { return MPI_MAX; }
static inline MPI_Op CMPI_op_min(void) { return MPI_MIN; }
static inline MPI_Request CMPI_request_null(void) { return MPI_REQUEST_NULL; }
/// `MPI_STATUS_IGNORE` / `MPI_STATUSES_IGNORE` are casts of 0 to a pointer type.
static inline MPI_Status *CMPI_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *CMPI_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
/// `MPI_IN_PLACE` is a sentinel pointer cast from an integer.
static inline void *CMPI_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler CMPI_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int CMPI_success(void) { return MPI_SUCCESS; }
static inline int CMPI_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int CMPI_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int CMPI_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
static inline int CMPI_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int CMPI_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }

#endif
