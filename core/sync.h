#ifndef ASYNCREP_SYNC_H
#define ASYNCREP_SYNC_H
#endif
