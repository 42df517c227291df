"""The ``onnx2max`` command: ``run``, ``check``, ``ops`` and ``conformance``."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
import numpy as np

from .errors import Onnx2MaxError


def _parse_shapes(items: tuple[str, ...]) -> dict[str, tuple[int, ...]] | None:
    shapes = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        if not sep or not name:
            raise click.BadParameter(f"'{item}': expected NAME=D0,D1,...", param_hint="--input-shape")
        try:
            shapes[name] = tuple(int(d) for d in dims.split(",") if d.strip() != "")
        except ValueError:
            raise click.BadParameter(f"'{item}': dims must be integers", param_hint="--input-shape") from None
    return shapes or None


def _split_at_existing_file(item: str) -> tuple[str, str, str]:
    """``NAME=PATH`` split at the first ``=`` after which an existing file is named, so that
    input names and paths may both hold ``=``; at the first ``=`` when no split names a file."""
    cuts = [k for k, ch in enumerate(item) if ch == "="]
    for k in cuts:
        if k and os.path.isfile(item[k + 1:]):  # False, not OSError, for names too long for a path
            return item[:k], "=", item[k + 1:]
    return item.partition("=")


def _parse_inputs(items: tuple[str, ...]) -> dict[str, np.ndarray]:
    feeds = {}
    for item in items:
        name, sep, path = _split_at_existing_file(item)
        if not sep:
            raise click.BadParameter(f"'{item}': expected NAME=FILE.npy", param_hint="--input")
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise click.BadParameter(
                f"'{item}': cannot read '{path}' as a .npy array (numpy.save format): {e}"
                + (" (an input name holding '=' is split where an existing file follows)"
                   if item.count("=") > 1 else ""), param_hint="--input"
            ) from None
    return feeds


def _parse_consts(items: tuple[str, ...]) -> dict:
    """``--const NAME=VALUE``: a number, comma-separated numbers (a 1-D list) or a .npy file."""
    consts = {}
    for item in items:
        # a .npy path may hold "=" (split where a file is named), numbers never do (split at the last)
        name, sep, text = _split_at_existing_file(item)
        if not text.endswith(".npy") or not os.path.isfile(text):
            name, sep, text = item.rpartition("=")
        if not sep or not name or not text:
            raise click.BadParameter(f"'{item}': expected NAME=VALUE", param_hint="--const")
        if name in consts:
            raise click.BadParameter(f"'{name}' is given twice", param_hint="--const")
        if text.endswith(".npy"):
            try:
                consts[name] = np.load(text, allow_pickle=False)
            except (OSError, ValueError, EOFError) as e:
                raise click.BadParameter(f"'{text}': cannot read it as a .npy array: {e}",
                                         param_hint="--const") from None
            continue
        parts = text.split(",")
        try:
            nums = [int(p) if p.strip().lstrip("+-").isdigit() else float(p) for p in parts]
        except ValueError:
            raise click.BadParameter(f"'{item}': VALUE must be numbers (1 or 1,2,3) or a .npy file",
                                     param_hint="--const") from None
        consts[name] = nums if len(parts) > 1 else nums[0]
    return consts


def _parse_dims(items) -> dict[str, int]:
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name or not text.strip().isdigit():
            raise click.BadParameter(f"'{item}': expected NAME=SIZE, e.g. batch=4", param_hint="--dim")
        out[name] = int(text)
    return out


def _make_inputs(model, given: dict, seed: int, ones: bool, dims=()) -> dict[str, np.ndarray]:
    from .compare import random_feeds

    sizes = _parse_dims(dims)
    known = {d for s in model.inputs for d in s.shape if isinstance(d, str)}
    unknown = [d for d in sizes if d not in known]
    if unknown:
        raise click.BadParameter(f"{unknown} are not symbolic dims of the model's inputs "
                                 f"({sorted(known) or 'it has none'})", param_hint="--dim")
    return random_feeds(model.inputs, seed, ones, given=given,
                        skip=[s.name for s in model.inputs if s.has_default], dims=sizes)


def _check_input_names(model, given: dict) -> None:
    names = [s.name for s in model.inputs]
    unknown = [k for k in given if k not in names]
    if unknown:
        raise click.BadParameter(
            f"{unknown} not among the model's inputs {names}", param_hint="--input"
        )


def _convert(model_arg, device, input_shape, cache_dir, no_cache, given=None, profile=False, consts=None,
             zoo_names=False):
    from . import from_onnx
    from .bundled import resolve_model

    try:
        path = resolve_model(model_arg)
    except FileNotFoundError as e:
        msg = str(e)
        if zoo_names:  # bench also takes the zoo's models (exported from torch)
            try:
                from models import ZOO

                msg += f"; zoo models: {', '.join(ZOO)}"
            except ImportError:
                msg += "; zoo models need a clone of the repository with torch installed"
        raise click.ClickException(msg) from None
    if given:  # check --input names against the graph before paying for a compile
        import onnx

        try:
            g = onnx.load(str(path), load_external_data=False).graph
        except Exception:
            g = None  # from_onnx reports an unreadable file with a typed error
        if g is not None:
            names = [i.name for i in g.input]
            unknown = [k for k in given if k not in names]
            if unknown:
                raise click.BadParameter(
                    f"{unknown} not among the model's inputs {names}", param_hint="--input"
                )
    model = from_onnx(
        path,
        device=device,
        input_shapes=_parse_shapes(input_shape),
        constant_inputs=consts or None,
        cache_dir=False if no_cache else cache_dir,
        profile=profile,
    )
    how = "from the compile cache" if model.cache_hit else "compiled"
    click.echo(f"{path}: {how} for {model.device} in {model.stats.wall_s:.2f} s", err=True)
    return path, model


def _common(f):
    f = click.option("--device", default="cpu", show_default=True, help="cpu, gpu or gpu:N")(f)
    f = click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D0,D1,...",
                     help="fix the shape of a graph input with symbolic dims (repeatable); dims "
                          "not fixed stay symbolic: one compile for every size")(f)
    f = click.option("--const", "consts", multiple=True, metavar="NAME=VALUE",
                     help="fix a graph input to a value at conversion: a number, 1,2,3 or a .npy "
                          "file (repeatable); e.g. a sample rate")(f)
    f = click.option("--input", "inputs", multiple=True, metavar="NAME=FILE.npy",
                     help="an input array from a .npy file (repeatable); others are random. A "
                          "NAME holding '=' is split where an existing FILE follows")(f)
    f = click.option("--dim", "dims", multiple=True, metavar="NAME=SIZE",
                     help="size of a symbolic dim in the random inputs (repeatable; default 1), "
                          "e.g. batch=4")(f)
    f = click.option("--ones", is_flag=True, help="all-ones inputs instead of random ones")(f)
    f = click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
                     help="seed of the random inputs")(f)
    f = click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
                     help="compile cache folder (default $ONNX2MAX_CACHE_DIR or ~/.cache/onnx2max)")(f)
    f = click.option("--no-cache", is_flag=True, help="do not read or write the compile cache")(f)
    f = click.option("--profile", is_flag=True,
                     help="print where the conversion's time went (load, prepare, lower, MAX "
                          "compile, cache)")(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="onnx2max")
def main():
    """Translate ONNX models to compiled MAX graphs, run them, check them against onnxruntime.

    MODEL is a path to an .onnx file or the name of a bundled model: mobilenet_v2 (from
    onnx2max's zoo, seeded random weights) or a real CNN shipped with the onnx package
    (bvlc_alexnet or alexnet, densenet121, inception_v1, inception_v2, resnet50, shufflenet,
    squeezenet, vgg19, zfnet512).
    """


@main.command()
@click.argument("model")
@_common
def run(model, device, input_shape, consts, inputs, dims, ones, seed, cache_dir, no_cache, profile):
    """Convert MODEL, run it once and print a summary of each output."""
    from rich.console import Console
    from rich.table import Table

    given = _parse_inputs(inputs)
    try:
        _path, m = _convert(model, device, input_shape, cache_dir, no_cache, given, profile,
                            _parse_consts(consts))
        _check_input_names(m, given)
        feeds = _make_inputs(m, given, seed, ones, dims)
        t0 = time.monotonic()
        outs = m.run(None, feeds)
        dt = time.monotonic() - t0
    except Onnx2MaxError as e:
        raise click.ClickException(f"{type(e).__name__}: {e}") from None
    table = Table(title=f"outputs ({dt * 1e3:.2f} ms)")
    for col in ("output", "dtype", "shape", "min", "max", "mean"):
        table.add_column(col)
    for spec, o in zip(m.outputs, outs):
        num = o.astype(np.float64) if o.size else np.zeros(1)
        table.add_row(spec.name, str(o.dtype), str(list(o.shape)), f"{num.min():.6g}",
                      f"{num.max():.6g}", f"{num.mean():.6g}")
    Console().print(table)


@main.command()
@click.argument("model")
@_common
@click.option("--atol", default=1e-4, show_default=True, type=click.FloatRange(min=0), help="absolute tolerance")
@click.option("--rtol", default=1e-3, show_default=True, type=click.FloatRange(min=0), help="relative tolerance")
@click.option("--bisect", is_flag=True,
              help="compare every node output (one compile with all of them as outputs) and name "
                   "the first node that diverges from onnxruntime")
@click.option("--save-repro", "save_repro", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="with --bisect (implied): write the first diverging node as a one-node model "
                   "with its inputs into DIR")
def check(model, device, input_shape, consts, inputs, dims, ones, seed, cache_dir, no_cache, profile, atol,
          rtol, bisect, save_repro):
    """Run MODEL on MAX and on onnxruntime with the same inputs and compare every output.

    Exit status, as diff's: 0 when every output matches, 1 when an output differs by more than
    atol + rtol * |reference|, 2 when no comparison could be made (a bad argument, a model that
    cannot be read, converted or run, or an onnxruntime failure).
    With --bisect, every node output of the main graph is compared, and the first node (in
    graph order) whose output exceeds the tolerance is named with its op, attributes and input
    shapes.
    """
    try:
        _check(model, device, input_shape, consts, inputs, dims, ones, seed, cache_dir, no_cache, profile,
               atol, rtol, bisect, save_repro)
    except click.UsageError:
        raise
    except click.ClickException as e:  # status 1 is kept for "the outputs differ"
        raise _NoComparison(e.message) from None


class _NoComparison(click.ClickException):
    """``check`` could not compare (exit status 2, as diff's "trouble")."""

    exit_code = 2


def _check(model, device, input_shape, consts, inputs, dims, ones, seed, cache_dir, no_cache, profile, atol,
           rtol, bisect, save_repro):
    from rich.console import Console
    from rich.table import Table

    try:
        import onnxruntime as ort
    except ImportError:
        raise click.ClickException(
            "check needs onnxruntime: pip install 'onnx2max[check]' (or pip install onnxruntime)"
        ) from None
    given = _parse_inputs(inputs)
    const_values = _parse_consts(consts)
    if save_repro is not None and (str(save_repro) in ("", ".") or (save_repro.exists() and not save_repro.is_dir())):
        raise click.BadParameter(f"'{save_repro}' must name a new or existing folder",
                                 param_hint="--save-repro")
    if bisect or save_repro:
        _bisect(model, device, input_shape, const_values, given, ones, seed, cache_dir, no_cache, atol,
                rtol, save_repro)
        return
    try:
        path, m = _convert(model, device, input_shape, cache_dir, no_cache, given, profile, const_values)
        _check_input_names(m, given)
        feeds = _make_inputs(m, given, seed, ones, dims)
        got = m.run(None, feeds)
    except Onnx2MaxError as e:
        raise click.ClickException(f"{type(e).__name__}: {e}") from None
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        want = sess.run([s.name for s in m.outputs], {**feeds, **m._built.prepared.constants})
    except Exception as e:  # onnxruntime's own errors have no common base class
        from .compare import reference_failure

        raise click.ClickException(f"ReferenceRunError: {reference_failure(str(path), e)}") from None
    table = Table(title=f"MAX vs onnxruntime {ort.__version__}",
                  caption=f"ok: every element within atol + rtol * |onnxruntime| (atol {atol:g}, "
                          f"rtol {rtol:g}); the max errors may come from different elements")
    for col in ("output", "shape", "max abs err", "max rel err", "result"):
        table.add_column(col)
    ok = True
    for spec, g, w in zip(m.outputs, got, want):
        if g.shape != w.shape or g.dtype != w.dtype:
            table.add_row(spec.name, f"{list(g.shape)} vs {list(w.shape)}", "-", "-", "[red]FAIL (type)")
            ok = False
            continue
        if g.dtype.kind in "fc":
            diff = np.abs(g.astype(np.float64) - w.astype(np.float64))
            rel = diff / np.maximum(np.abs(w.astype(np.float64)), np.finfo(np.float32).tiny)
            close = bool(np.all((diff <= atol + rtol * np.abs(w)) | (np.isnan(g) & np.isnan(w))))
            mabs, mrel = (float(np.nanmax(diff)), float(np.nanmax(rel))) if diff.size else (0.0, 0.0)
        else:
            close = bool(np.array_equal(g, w))
            mabs = mrel = 0.0 if close else float("nan")
        ok &= close
        table.add_row(spec.name, str(list(g.shape)), f"{mabs:.3g}", f"{mrel:.3g}",
                      "[green]ok" if close else "[red]FAIL")
    Console().print(table)
    if not ok:
        fired = {k: v for k, v in m.stats.passes.items() if v}
        hint = ""
        if fired:  # --bisect compares the literal graph, without these rewrites
            hint = ("; graph passes rewrote this model (" + ", ".join(f"{k}: {v}" for k, v in fired.items())
                    + "): rerun with ONNX2MAX_PASSES=none to rule them out before --bisect")
        click.echo(f"outputs differ from onnxruntime beyond the tolerance{hint}", err=True)
        sys.exit(1)


def _bisect(model, device, input_shape, const_values, given, ones, seed, cache_dir, no_cache, atol, rtol,
            save_repro):
    import json
    from rich.console import Console
    from rich.table import Table

    from .bundled import resolve_model
    from .compare import compare

    try:
        path = resolve_model(model)
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None
    try:
        c = compare(path, given, input_shapes=_parse_shapes(input_shape),
                    constant_inputs=const_values or None, atol=atol, rtol=rtol,
                    seed=seed, ones=ones, device=device, cache_dir=False if no_cache else cache_dir)
    except Onnx2MaxError as e:
        raise click.ClickException(f"{type(e).__name__}: {e}") from None
    bad = [r for r in c.rows if not r.ok]
    shown = bad[:20] if bad else c.rows[-10:]
    table = Table(title=f"{len(c.rows)} node outputs compared with onnxruntime, {len(bad)} beyond "
                        f"atol {atol:g} + rtol {rtol:g} * |onnxruntime|"
                        + (" (the first 20 shown)" if len(bad) > 20 else "")
                        + ("" if bad else " (the last 10 shown)"))
    for col in ("#", "node", "op", "output", "shape", "max abs err", "max rel err", "result"):
        table.add_column(col)
    for r in shown:
        table.add_row(str(r.index), r.node, r.op_type, r.output, str(list(r.shape)), f"{r.max_abs:.3g}",
                      f"{r.max_rel:.3g}", "[green]ok" if r.ok else f"[red]FAIL {r.why}".rstrip())
    Console().print(table)
    if c.skipped:
        click.echo(f"not compared: {len(c.skipped)} node outputs of unknown or non-tensor type", err=True)
    if c.first_bad is None:
        click.echo("every node output matches onnxruntime. If `onnx2max check` without --bisect "
                   "fails on the same inputs, suspect a MAX fusion: making every node output a graph "
                   "output stops MAX from fusing nodes (as with MAX 26.7's attention kernel, "
                   "README 'Accuracy evidence')", err=True)
        if save_repro:
            click.echo("nothing to save: no node diverged", err=True)
        return
    click.echo("first diverging " + c.describe(c.first_bad), err=True)
    if save_repro:
        try:
            repro = c.save_repro(save_repro)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        info = json.loads((repro.parent / "repro.json").read_text())
        click.echo(f"repro written to {repro.parent}/; rerun it there with: cd {repro.parent} && "
                   f"{info['command']}", err=True)
    sys.exit(1)


@main.command()
@click.argument("model")
@_common
@click.option("--runs", default=50, show_default=True, type=click.IntRange(min=1),
              help="timed calls per engine, at most")
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(min=0), help="untimed calls first")
@click.option("--max-seconds", default=20.0, show_default=True, type=click.FloatRange(min=0),
              help="stop timing after this long (at least 5 calls each)")
@click.option("--block", default=10, show_default=True, type=click.IntRange(min=1),
              help="timed calls of one engine before the next engine's turn; every block starts with "
                   "20 ms of untimed calls. 1 alternates single calls with no untimed ones (slower "
                   "figures for every engine on few cores)")
@click.option("--no-overhead", is_flag=True, help="skip the per-call overhead of a one-op model")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="write the figures as JSON")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None,
              help="write a bar chart (PNG; needs matplotlib: pip install 'onnx2max[plot]')")
def bench(model, device, input_shape, consts, inputs, dims, ones, seed, cache_dir, no_cache, profile, runs, warmup,
          max_seconds, block, no_overhead, json_path, plot_path):
    """Time MODEL on MAX against onnxruntime (and torch eager for a zoo model), interleaved.

    MODEL is a path, a bundled model, or a zoo model (mlp, small_cnn, resnet18, mobilenet_v2,
    transformer_encoder, gpt: exported from torch, which is then timed too). Prints the median,
    p90 and min latency in ms, throughput and MAX/onnxruntime ratio, and the per-call overhead of
    `run` on a one-op model.
    """
    import json
    import tempfile

    from rich.console import Console
    from rich.table import Table

    from . import bench as b

    if json_path is not None and (json_path.is_dir() or not json_path.parent.is_dir()):
        raise click.BadParameter(f"'{json_path}' must be a file in an existing folder", param_hint="--json")
    if plot_path is not None:
        if plot_path.is_dir() or not plot_path.parent.is_dir():
            raise click.BadParameter(f"'{plot_path}' must be a file in an existing folder", param_hint="--plot")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise click.ClickException("--plot needs matplotlib: pip install matplotlib (or the "
                                       "'plot' extra: pip install -e \".[plot]\" in a clone)") from None
    given = _parse_inputs(inputs)
    torch_module = torch_inputs = None
    with tempfile.TemporaryDirectory() as tmp:
        model_arg = model
        zoo = _zoo_model(model)
        if zoo is not None:
            torch_module, torch_inputs, model_arg = zoo[0], zoo[1], str(_export_zoo(zoo, model, Path(tmp)))
            given = {**{f"input_{i}": t.numpy() for i, t in enumerate(torch_inputs)}, **given}
        const_values = _parse_consts(consts)
        try:
            path, m = _convert(model_arg, device, input_shape, cache_dir, no_cache, given, profile, const_values,
                               zoo_names=True)
            _check_input_names(m, given)
            feeds = _make_inputs(m, given, seed, ones, dims)
            res = b.bench(path, m, feeds, ort_feeds={**feeds, **m._built.prepared.constants},
                          torch_module=torch_module, torch_inputs=torch_inputs, warmup=warmup, runs=runs,
                          max_seconds=max_seconds, label=model, block=block)
            if not no_overhead:
                res.overhead = b.call_overhead(cache_dir=False if no_cache else cache_dir, block=block)
        except Onnx2MaxError as e:
            raise click.ClickException(f"{type(e).__name__}: {e}") from None
    con = Console()
    table = Table(title=f"{model}: batch {res.batch}, {res.timings[0].runs} runs each, interleaved in "
                        f"blocks of {block} (load average {res.machine['load_avg']} before)")
    for col in ("engine", "median ms", "p90 ms", "min ms", "samples/s", "time / onnxruntime's"):
        table.add_column(col)
    ort_med = res.timings[1].median_ms
    for t in res.timings:
        table.add_row(t.engine, f"{t.median_ms:.3f}", f"{t.p90_ms:.3f}", f"{t.min_ms:.3f}",
                      f"{t.throughput:.1f}", f"{t.median_ms / ort_med:.2f}x")
    con.print(table)
    if res.overhead:
        o = Table(title="per-call overhead of run (one-op model y = x + 1)")
        for col in ("engine", "median ms", "p90 ms"):
            o.add_column(col)
        for t in res.overhead:
            o.add_row(t.engine, f"{t.median_ms:.4f}", f"{t.p90_ms:.4f}")
        con.print(o)
    if json_path:
        json_path.write_text(json.dumps(res.to_dict(), indent=1) + "\n")
        click.echo(f"figures written to {json_path}", err=True)
    if plot_path:
        try:
            b.plot([res], plot_path)
        except ImportError:
            raise click.ClickException("--plot needs matplotlib: pip install matplotlib") from None
        click.echo(f"chart written to {plot_path}", err=True)


def _zoo_model(name: str):
    """``(module, inputs)`` of zoo model ``name`` when torch and the zoo are installed, else None."""
    try:
        from models import ZOO
    except ImportError:
        return None
    if name not in ZOO or Path(name).exists():
        return None
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    return ZOO[name]()


def _export_zoo(zoo, name: str, folder: Path) -> Path:
    from export import to_onnx

    return to_onnx(zoo[0], zoo[1], folder / f"{name}.onnx")


@main.command("ops")
def list_ops():
    """List the supported (domain, op type) pairs, the opsets where each converter starts and
    the newest op version the converters were checked against; "symbolic dims tested" marks
    the ops that run with symbolic dims in tests/test_dynamic.py."""
    from . import supported_ops
    from .registry import ORT_ONNX_DOMAIN_OPS
    from .symbolic import TESTED_WITH_SYMBOLIC_DIMS
    from .versions import reviewed

    try:
        for domain, op, since in supported_ops():
            newest = reviewed(domain, op)
            upto = f", checked up to {op}-{newest}" if newest is not None else ""
            sym = ("; symbolic dims tested" if domain in ("", "ai.onnx")
                   and op in TESTED_WITH_SYMBOLIC_DIMS else "")
            if domain == "com.microsoft" or (domain in ("", "ai.onnx") and op in ORT_ONNX_DOMAIN_OPS
                                             and 1 in since):
                sym += "; version 1 is onnxruntime's own op"
            click.echo(f"{domain:13} {op:32} since opset {', '.join(map(str, since))}{upto}{sym}")
    except BrokenPipeError:  # `onnx2max ops | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@main.command("conformance")
@click.option("--op", "ops", multiple=True, metavar="OP",
              help="only cases of this op type, e.g. Conv (repeatable)")
@click.option("--name", "names", multiple=True, metavar="GLOB",
              help="only cases whose name matches, e.g. 'test_conv*' (repeatable)")
@click.option("--results", type=click.Path(path_type=Path), default=Path("docs/onnx-coverage.json"),
              show_default=True, help="JSON results, one record per case; reruns resume from it")
@click.option("--markdown", type=click.Path(path_type=Path), default=None,
              help="coverage page written from the results  [default: the results path with .md, "
                   "so docs/onnx-coverage.md for the default results]")
@click.option("--batch", "batch_size", default=64, show_default=True, type=click.IntRange(min=1),
              help="cases compiled together in one MAX compile")
@click.option("--fresh", is_flag=True, help="ignore earlier results and run every selected case")
@click.option("--resume-stale", is_flag=True,
              help="keep earlier results even if other code (onnx2max source, onnx, MAX) made them")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="compile cache folder (default $ONNX2MAX_CACHE_DIR or ~/.cache/onnx2max)")
def conformance(ops, names, results, markdown, batch_size, fresh, resume_stale, cache_dir):
    """Run the ONNX backend node tests of the installed onnx and record what passes.

    Cases that lower are compiled in batches through the compile cache; results are saved
    after every batch, so an interrupted run resumes where it stopped. Results made by other
    code (another onnx2max source, onnx or MAX) are not resumed: --fresh starts over,
    --resume-stale keeps them (the file then lists every source fingerprint). A full run on
    2 cores takes about an hour cold and minutes when the cache is warm.
    """
    from . import conformance as conf

    markdown = markdown if markdown is not None else results.with_suffix(".md")
    if markdown.resolve() == results.resolve():
        raise click.BadParameter(f"'{results}' would be both the results file and the page written from it; "
                                 "give --results a .json name or --markdown another path",
                                 param_hint="--results/--markdown")
    cases = conf.collect(ops, names)
    if not cases:
        given = [f"--op {o}" for o in ops] + [f"--name {n}" for n in names]
        raise click.ClickException(
            f"no backend test case of the installed onnx matches {' '.join(given) or 'the selection'}. "
            "Case names look like 'test_conv_with_strides_padding' (glob patterns such as "
            "'test_conv*' work) and op types like 'Conv'; docs/onnx-coverage.md lists every case")
    try:
        res = conf.run(cases, results, batch_size=batch_size, cache_dir=cache_dir, fresh=fresh,
                       resume_stale=resume_stale, log=lambda m: click.echo(m, err=True))
    except conf.StaleResultsError as e:
        raise click.ClickException(str(e)) from None
    conf.write_markdown(results, markdown)
    picked = {c.name for c in cases}
    tot = conf.summary({k: v for k, v in res.items() if k in picked})
    click.echo(f"{tot['passed']} passed, {tot['passed-bound']} passed-bound, {tot['folded']} folded "
               f"(not counted), {tot['failed']} failed, {tot['unsupported']} unsupported of "
               f"{len(picked)} selected cases; results in {results}, page in {markdown}")


if __name__ == "__main__":  # pragma: no cover
    main()
