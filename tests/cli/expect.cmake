# cmake -DCOMMAND="prog;arg;..." -DEXIT=<status> -DMATCH=<regex> [-DNOT_MATCH=<regex>] -P expect.cmake
# Runs a command-line program and checks its exit status and what it prints (stdout + stderr).
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT status EQUAL EXIT)
  message(FATAL_ERROR "exit status ${status}, expected ${EXIT}; output:\n${out}")
endif()
if(NOT out MATCHES "${MATCH}")
  message(FATAL_ERROR "output does not match '${MATCH}':\n${out}")
endif()
if(DEFINED NOT_MATCH AND out MATCHES "${NOT_MATCH}")
  message(FATAL_ERROR "output matches '${NOT_MATCH}', which it must not:\n${out}")
endif()
message(STATUS "${out}")
