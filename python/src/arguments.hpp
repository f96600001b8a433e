// Python arguments converted with errors that name them. nanobind's own conversion of an int, a
// float, a bool, a str, a list of sizes or a bound object, when it fails, raises "incompatible
// function arguments" with the signature and no word on which argument was wrong. So the bindings
// take such arguments as Arg<T>: its caster accepts any object (None too, with .none() on the
// argument), and the function converts it with the calls below, which raise TypeError (wrong
// type) or ValueError (out of range) with the argument's name and the value given. The function's
// signature is written out with nb::sig, so that help() and the type stubs show the real types.
#pragma once

#include <nanobind/nanobind.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mbmpo::python {

namespace nb = nanobind;

// A Python object given for an argument of type T, not converted yet.
template <class T>
struct Arg {
  nb::object object;
};

// An integer in [low, high]: a Python int or anything with __index__ (NumPy's integers), not a bool.
std::int64_t integer(const Arg<std::int64_t>& arg, const char* name, std::int64_t low, std::int64_t high);
// A seed: an integer in [0, 2**64).
std::uint64_t seed(const Arg<std::uint64_t>& arg, const char* name);
// A finite real number: an int or a float (or NumPy's), not a bool or a str.
double real(const Arg<double>& arg, const char* name);
// True or False (or NumPy's bool).
bool flag(const Arg<bool>& arg, const char* name);
// A str.
std::string text(const Arg<std::string>& arg, const char* name);
// A file system path: a str or an os.PathLike (pathlib.Path), as os.fspath gives it.
std::string file_path(const Arg<std::string>& arg, const char* name);
// A sequence of integers, each in [low, high] (a list, a tuple, a NumPy array; not a str).
std::vector<int> integers(const Arg<std::vector<int>>& arg, const char* name, int low, int high);

// An object of the bound class T (`type_name` as Python spells it), or TypeError naming `name`.
template <class T>
T& instance(const Arg<T>& arg, const char* name, const char* type_name);

// An array (NumPy, or any DLPack tensor such as PyTorch's), or TypeError naming `name`. Its dtype,
// shape and device are checked where it is used (arrays.hpp).
template <class Array>
Array array(const Arg<Array>& arg, const char* name);

// "got 'abc' (str)": the value given, shortened, and its type.
std::string given(nb::handle value);

template <class Array>
Array array(const Arg<Array>& arg, const char* name) {
  Array out;
  if (arg.object.is_none() || !nb::try_cast<Array>(arg.object, out, false)) {
    throw nb::type_error((std::string(name) + " must be an array (NumPy, or a DLPack tensor such as PyTorch's), " +
                          given(arg.object)).c_str());
  }
  return out;
}

template <class T>
T& instance(const Arg<T>& arg, const char* name, const char* type_name) {
  if (!nb::isinstance<T>(arg.object)) {
    throw nb::type_error((std::string(name) + " must be a " + type_name + ", " + given(arg.object)).c_str());
  }
  return nb::cast<T&>(arg.object);
}

}  // namespace mbmpo::python

namespace nanobind::detail {

// Takes any object; the binding converts it (see above). Its name in signatures is given by nb::sig.
template <class T>
struct type_caster<mbmpo::python::Arg<T>> {
  NB_TYPE_CASTER(mbmpo::python::Arg<T>, const_name("object"))
  bool from_python(handle src, uint8_t, cleanup_list*) noexcept {
    value.object = borrow(src);
    return true;
  }
};

}  // namespace nanobind::detail
