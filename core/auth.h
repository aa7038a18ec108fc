#ifndef ASYNCREP_AUTH_H
#define ASYNCREP_AUTH_H
#endif
