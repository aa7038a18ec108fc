#ifndef ASYNCREP_GEN_H
#define ASYNCREP_GEN_H
#endif
