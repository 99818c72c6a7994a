# mpi.mk — optional MPI for data-parallel training (src/train/dist.c).
#
# When an OpenMPI `mpicc` is on PATH, every object is compiled with -DSSMLM_MPI and the MPI
# include flags, and every program links libmpi; otherwise nothing changes and ssmlm runs as a
# single process.  `make MPI=0` builds without MPI even when mpicc exists; `make MPICC=/path/mpicc`
# picks another installation.  Debian: apt-get install openmpi-bin libopenmpi-dev.
# Include after CFLAGS_BASE and LDLIBS are defined.

MPI   ?= 1
MPICC ?= $(shell command -v mpicc 2>/dev/null)

ifeq ($(MPI),1)
ifneq ($(strip $(MPICC)),)
MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell $(MPICC) --showme:link 2>/dev/null)
ifneq ($(strip $(MPI_LIBS)),)
CFLAGS_BASE += -DSSMLM_MPI $(MPI_CFLAGS)
LDLIBS      += $(MPI_LIBS)
else
$(warning mpi.mk: $(MPICC) does not answer --showme (not OpenMPI?); building without MPI)
endif
endif
endif
