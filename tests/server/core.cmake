# Tests of jifend's core: an in-process server on an ephemeral port, spoken to in raw frames
# (including one whose log fills its map); and the inbox ring under contending producers (also
# meant for ThreadSanitizer builds).
if(TARGET jifen_server_core)
  jifen_test(server_core_tests
    SOURCES
      ${CMAKE_CURRENT_LIST_DIR}/core_dispatch_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/core_inbox_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/core_protocol_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/core_ledger_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/core_recovery_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/core_storage_test.cpp
      ${CMAKE_CURRENT_LIST_DIR}/core_tls_test.cpp
    VIEW server wal engine protocol
    LIBS jifen_server_core)
endif()
