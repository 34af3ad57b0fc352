/* version.h - weir's own version. */
#ifndef WEIR_CORE_VERSION_H
#define WEIR_CORE_VERSION_H
#define WEIR_VERSION "0.1.0"
#endif
