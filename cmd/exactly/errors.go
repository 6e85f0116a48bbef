package main

import "errors"

var errMissingConfig = errors.New("-c FILE: expected the path of a configuration file")
