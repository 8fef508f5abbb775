//! Independent zstd frames, compressed and decompressed on every core.
//!
//! A Fast or Compact stream is a run of zstd frames, each holding a few MiB
//! of the tar stream and declaring its content size. `zstd -d` reads such a
//! run as one stream; sauve hands each frame to a pool of worker threads and
//! puts the results back in order, so verify and restore decompress on every
//! core (behaviour §21.4). Sets written before frames (one frame of unknown size)
//! are still read, by the streaming decoder on one core.
//!
//! Memory is bounded whatever the number of cores: the frames in flight
//! are capped by bytes ([`WRITE_BUDGET`], [`READ_BUDGET`]) and by worker
//! count (Compact at most [`COMPACT_WORKERS`]), and a frame larger than
//! [`MAX_CONTENT`] is refused before more of it is read.
//!
//! Stop is never held up by compression (4D's Stop interrupts a backup at
//! any time; a Compact frame takes seconds): a writer waiting for a frame
//! asks its stop check every [`STOP_TICK`] and gives up the wait with
//! [`StopAsked`], and a worker compresses its frame [`STEP`] bytes at a
//! time, abandoning it between two steps once its writer is gone. Nothing
//! waits for an abandoned frame.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, BufRead, Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use sauve_settings::Compression;

/// The content of one Fast frame: level 1 keeps a 512 KiB window, so a
/// frame of 4 MiB loses almost nothing against one long frame.
const FAST_FRAME: usize = 4 << 20;
/// The content of one Compact frame: twice level 19's 2^23 window, so
/// most of every frame is compressed with a full window behind it.
const COMPACT_FRAME: usize = 16 << 20;
/// Compact workers at most. Each holds a level-19 context (about 45 MiB
/// with the 2^22 chain table) and one frame in flight (16 MiB in, at most
/// 16 MiB out): with the frame being filled, three stay under 256 MiB.
const COMPACT_WORKERS: usize = 3;
/// Fast: the bytes of the frames in flight (input and output) at most,
/// so that writing stays under 100 MiB on any number of cores.
const WRITE_BUDGET: usize = 64 << 20;
/// Reading: the bytes of the frames in flight (compressed and
/// decompressed) at most; two frames are always allowed.
const READ_BUDGET: u64 = 64 << 20;
/// The largest frame content the parallel reader accepts: what sauve
/// writes at most. A frame declaring more, or whose compressed bytes pass
/// [`MAX_COMPRESSED`], is refused while it is read.
pub(crate) const MAX_CONTENT: u64 = COMPACT_FRAME as u64;
/// zstd's bound on a compressed frame of [`MAX_CONTENT`] bytes (raw blocks
/// and their headers), with room to spare.
pub(crate) const MAX_COMPRESSED: u64 = MAX_CONTENT + MAX_CONTENT / 128 + (1 << 20);

/// How often a writer waiting for a frame asks whether to stop.
const STOP_TICK: Duration = Duration::from_millis(10);
/// The input a worker compresses between two looks at whether its frame is
/// still wanted: at level 19 (a few MB/s on one core) a tenth of a second.
const STEP: usize = 256 << 10;

/// Asked by a writer while it waits for a frame: true once the set is to
/// be abandoned (Stop).
pub(crate) type StopCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// The error of a write that a stop interrupted while it waited for a
/// frame, or of a frame abandoned by its worker; the archive writer makes
/// it [`crate::ArchiveError::Stopped`].
#[derive(Debug)]
pub(crate) struct StopAsked;

impl std::fmt::Display for StopAsked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped while frames were being compressed")
    }
}

impl std::error::Error for StopAsked {}

fn stop_asked() -> io::Error {
    io::Error::other(StopAsked)
}

const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames (which `zstd -d` skips) have magics 0x184D2A50 to 0x184D2A5F.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// The number of cores, or `threads` when it is not 0.
pub(crate) fn workers(threads: u32) -> usize {
    if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads as usize
    }
}

/// A job: bytes in, the reply channel of its result.
struct Job {
    input: Vec<u8>,
    reply: mpsc::SyncSender<io::Result<Vec<u8>>>,
}

/// Worker threads turning buffers into buffers, whose results come back in
/// the order the jobs were given. Dropped, it cancels the jobs not started
/// and does not wait for the ones running, which see `cancelled` and may
/// give up: a Stop or an error under the data lock is not held up by
/// compression nobody will read.
struct Pool {
    what: &'static str,
    jobs: Option<mpsc::Sender<Job>>,
    cancelled: Arc<AtomicBool>,
    pending: VecDeque<mpsc::Receiver<io::Result<Vec<u8>>>>,
}

impl Pool {
    /// `workers` threads named after `what`, each with its own state made
    /// by `make` (a zstd context), running `work` on every job; `work` is
    /// given the pool's `cancelled`, true once nobody waits for its result.
    fn new<S: 'static>(
        what: &'static str,
        workers: usize,
        make: impl Fn() -> io::Result<S> + Send + Sync + 'static,
        work: fn(&mut S, &[u8], &AtomicBool) -> io::Result<Vec<u8>>,
    ) -> io::Result<Pool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let make = Arc::new(make);
        let cancelled = Arc::new(AtomicBool::new(false));
        for i in 0..workers.max(1) {
            let rx = Arc::clone(&rx);
            let make = Arc::clone(&make);
            let cancelled = Arc::clone(&cancelled);
            std::thread::Builder::new()
                .name(format!("sauve-{what}-{i}"))
                .spawn(move || {
                    let mut state = make();
                    loop {
                        // The guard is dropped before the work starts.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        if cancelled.load(Ordering::Relaxed) {
                            return;
                        }
                        let result = match state.as_mut() {
                            Ok(s) => work(s, &job.input, &cancelled),
                            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                        };
                        // The reader may have gone (an error elsewhere): nothing to do.
                        let _ = job.reply.send(result);
                    }
                })?;
        }
        Ok(Pool {
            what,
            jobs: Some(tx),
            cancelled,
            pending: VecDeque::new(),
        })
    }

    fn submit(&mut self, input: Vec<u8>) -> io::Result<()> {
        let (reply, result) = mpsc::sync_channel(1);
        let what = self.what;
        let gone = || io::Error::other(format!("the {what} workers stopped"));
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(Job { input, reply })
            .map_err(|_| gone())?;
        self.pending.push_back(result);
        Ok(())
    }

    /// The oldest job's result, waiting for it; `None` when none is
    /// pending. With `stop`, the wait asks it every [`STOP_TICK`] and ends
    /// with [`StopAsked`] once it says so, leaving the job to its worker.
    fn next(&mut self, stop: Option<&StopCheck>) -> Option<io::Result<Vec<u8>>> {
        let result = self.pending.front()?;
        let got = match stop {
            None => result.recv().ok(),
            Some(stop) => loop {
                if stop() {
                    return Some(Err(stop_asked()));
                }
                match result.recv_timeout(STOP_TICK) {
                    Ok(r) => break Some(r),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break None,
                }
            },
        };
        self.pending.pop_front();
        let what = self.what;
        Some(got.unwrap_or_else(|| Err(io::Error::other(format!("a {what} worker stopped")))))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
        // The workers end when the queue is closed and empty.
        self.jobs = None;
    }
}

/// A compressing worker's state: its zstd context, and the test hold of
/// the set's destination, if any.
struct Compress {
    cctx: zstd::zstd_safe::CCtx<'static>,
    hold: Option<Arc<hold::Gate>>,
}

fn zstd_error(code: zstd::zstd_safe::ErrorCode) -> io::Error {
    io::Error::other(format!("zstd: {}", zstd::zstd_safe::get_error_name(code)))
}

/// Compresses one frame that declares its size, [`STEP`] bytes at a time,
/// abandoning it ([`StopAsked`]) between two steps once `cancelled`.
fn compress_frame(c: &mut Compress, input: &[u8], cancelled: &AtomicBool) -> io::Result<Vec<u8>> {
    if let Some(gate) = &c.hold {
        gate.pass();
    }
    let result = compress_in_steps(&mut c.cctx, input, cancelled);
    if let Some(gate) = &c.hold {
        gate.left(result.is_ok());
    }
    result
}

fn compress_in_steps(
    cctx: &mut zstd::zstd_safe::CCtx<'static>,
    input: &[u8],
    cancelled: &AtomicBool,
) -> io::Result<Vec<u8>> {
    use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective::{ZSTD_e_continue, ZSTD_e_end};
    use zstd::zstd_safe::{InBuffer, OutBuffer, ResetDirective};
    cctx.reset(ResetDirective::SessionOnly)
        .map_err(zstd_error)?;
    // Declared in the frame's header, as the reader requires.
    cctx.set_pledged_src_size(Some(input.len() as u64))
        .map_err(zstd_error)?;
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(input.len()));
    // zstd always makes progress with room in its output; the bound above
    // is enough for one frame, and this is a safeguard.
    let room = |out: &mut Vec<u8>| {
        if out.capacity() - out.len() < 4096 {
            out.reserve(zstd::zstd_safe::CCtx::out_size());
        }
    };
    for piece in input.chunks(STEP) {
        if cancelled.load(Ordering::Relaxed) {
            return Err(stop_asked());
        }
        let mut src = InBuffer::around(piece);
        while src.pos() < piece.len() {
            room(&mut out);
            let at = out.len();
            let mut dst = OutBuffer::around_pos(&mut out, at);
            cctx.compress_stream2(&mut dst, &mut src, ZSTD_e_continue)
                .map_err(zstd_error)?;
        }
    }
    loop {
        room(&mut out);
        let at = out.len();
        let mut dst = OutBuffer::around_pos(&mut out, at);
        let left = cctx
            .compress_stream2(&mut dst, &mut InBuffer::around(&[]), ZSTD_e_end)
            .map_err(zstd_error)?;
        if left == 0 {
            break;
        }
    }
    // Sized for the worst case (the input's size and more).
    out.shrink_to_fit();
    Ok(out)
}

/// Cuts a stream into frames compressed in parallel and writes them, in
/// order, to `inner`. [`FrameWriter::finish`] writes what is left.
pub(crate) struct FrameWriter<W: Write> {
    inner: W,
    frame: usize,
    input: Vec<u8>,
    pool: Pool,
    /// Frames in flight at most.
    depth: usize,
    frames: u64,
    /// Asked while waiting for a frame (see the module documentation).
    stop: Option<StopCheck>,
    /// The stream's bytes handed to the workers so far.
    taken: u64,
    /// Where each frame in flight starts in the stream.
    starts: VecDeque<u64>,
    /// The compressed bytes written so far.
    written: u64,
    /// Each frame written: where it starts (in the stream, in what was
    /// written).
    table: Vec<(u64, u64)>,
}

impl<W: Write> FrameWriter<W> {
    /// `threads` is the number of workers (0: every core; Compact takes at
    /// most [`COMPACT_WORKERS`], Fast as many as [`WRITE_BUDGET`] allows).
    /// `destination` is the set's folder, which a test may hold frames of.
    pub(crate) fn new(
        inner: W,
        level: Compression,
        threads: u32,
        destination: &std::path::Path,
    ) -> io::Result<FrameWriter<W>> {
        let compact = level == Compression::Compact;
        let (frame, zlevel, workers, depth) = if compact {
            // One frame in flight per worker: a level-19 frame takes
            // seconds, a queued one would only hold memory.
            let w = workers(threads).min(COMPACT_WORKERS);
            (COMPACT_FRAME, 19, w, w)
        } else {
            // Each frame in flight holds its input and its output.
            let most = WRITE_BUDGET / (2 * FAST_FRAME);
            let w = workers(threads).min(most - 1);
            (FAST_FRAME, 1, w, w + 1)
        };
        let hold = hold::gate_for(destination);
        let pool = Pool::new(
            "zstd",
            workers,
            move || {
                use zstd::zstd_safe::CParameter;
                let mut cctx = zstd::zstd_safe::CCtx::try_create()
                    .ok_or_else(|| io::Error::other("zstd cannot make a context"))?;
                let mut set = |p| cctx.set_parameter(p).map(drop).map_err(zstd_error);
                set(CParameter::CompressionLevel(zlevel))?;
                set(CParameter::ChecksumFlag(true))?;
                set(CParameter::ContentSizeFlag(true))?;
                if compact {
                    // A 2^23 window (behaviour §6.1 allows 2^27) and a 2^22 chain
                    // table keep a level-19 context near 45 MiB.
                    set(CParameter::WindowLog(23))?;
                    set(CParameter::ChainLog(22))?;
                }
                Ok(Compress {
                    cctx,
                    hold: hold.clone(),
                })
            },
            compress_frame,
        )?;
        Ok(FrameWriter {
            inner,
            frame,
            input: Vec::with_capacity(frame),
            pool,
            depth: depth.max(1),
            frames: 0,
            stop: None,
            taken: 0,
            starts: VecDeque::new(),
            written: 0,
            table: Vec::new(),
        })
    }

    /// A wait for a frame gives up as soon as `stop` says so.
    pub(crate) fn stop_when(&mut self, stop: StopCheck) {
        self.stop = Some(stop);
    }

    fn write_out(&mut self) -> io::Result<()> {
        if let Some(out) = self.pool.next(self.stop.as_ref()) {
            let out = out?;
            self.inner.write_all(&out)?;
            let start = self.starts.pop_front().unwrap_or(self.taken);
            self.table.push((start, self.written));
            self.written += out.len() as u64;
        }
        Ok(())
    }

    /// Where each frame written so far starts (in the stream, in the
    /// compressed bytes), then where the next one will: after a flush,
    /// every frame of the stream so far (the set's [`crate::Layout`]).
    pub(crate) fn table(&self) -> Vec<(u64, u64)> {
        let mut table = self.table.clone();
        table.push((self.taken, self.written));
        table
    }

    /// Hands the frame being filled to the workers, after writing out the
    /// oldest one when as many as allowed are in flight.
    fn cut(&mut self) -> io::Result<()> {
        if self.pool.pending.len() >= self.depth {
            self.write_out()?;
        }
        let input = std::mem::replace(&mut self.input, Vec::with_capacity(self.frame));
        let len = input.len() as u64;
        self.pool.submit(input)?;
        self.starts.push_back(self.taken);
        self.taken += len;
        self.frames += 1;
        Ok(())
    }

    /// Compresses and writes what is left (at least one frame, so an empty
    /// stream is still a zstd stream) and gives the inner writer back.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if self.frames == 0 {
            self.cut()?;
        }
        self.flush()?;
        Ok(self.inner)
    }

    pub(crate) fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: Write> Write for FrameWriter<W> {
    /// Takes what fits in the frame being filled. A full frame is cut
    /// before anything more is taken, so that an error leaves nothing of
    /// `buf` consumed.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.input.len() == self.frame {
            self.cut()?;
        }
        let n = buf.len().min(self.frame - self.input.len());
        self.input.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    /// Cuts the frame being filled and writes every frame. The archive
    /// writer flushes once, before the manifest (which then starts a frame
    /// of its own, where the set's index points), and [`FrameWriter::finish`]
    /// does the same at the end: frames stay whole.
    fn flush(&mut self) -> io::Result<()> {
        if !self.input.is_empty() {
            self.cut()?;
        }
        while !self.pool.pending.is_empty() {
            self.write_out()?;
        }
        self.inner.flush()
    }
}

/// Whether a zstd stream starting with `head` is read frame by frame: its
/// first frame declares a content size no larger than [`MAX_CONTENT`].
pub(crate) fn is_framed(head: &[u8]) -> bool {
    matches!(
        zstd::zstd_safe::get_frame_content_size(head),
        Ok(Some(n)) if n <= MAX_CONTENT
    )
}

/// Where each frame read starts, (in the stream, in the compressed bytes),
/// shared with the reader that holds a set to its layout.
pub(crate) type FrameStarts = Rc<std::cell::RefCell<Vec<(u64, u64)>>>;

/// A frame handed to the workers: where it was read, its number, and its
/// bytes in flight (compressed and decompressed).
struct Pending {
    at: (usize, usize),
    number: u64,
    bytes: u64,
}

/// Decompresses a run of frames on `threads` workers (0: every core),
/// reading the compressed bytes from `source` in the caller's thread.
pub(crate) struct FrameReader<R: BufRead> {
    source: R,
    pool: Pool,
    workers: usize,
    /// Where the source is being read (a segment's index), and where the
    /// frame being handed out was read (first and last segment): reading
    /// runs ahead of decoding, and a damaged frame must name where it lies.
    reading: Rc<Cell<usize>>,
    shown: Rc<Cell<(usize, usize)>>,
    pending: VecDeque<Pending>,
    in_flight: u64,
    current: Vec<u8>,
    at: usize,
    eof: bool,
    /// A damaged frame met while reading ahead, and where: reported once
    /// the frames before it are handed out, so that the entry named as the
    /// last good one is.
    failed: Option<(io::Error, (usize, usize))>,
    /// Frames read so far, to name the damaged one.
    frames: u64,
    /// Where each frame read starts (in the stream, in the compressed
    /// bytes), for a reader that holds a set to its layout.
    starts: Option<FrameStarts>,
    /// The stream's and the compressed bytes read so far.
    read: (u64, u64),
}

impl<R: BufRead> FrameReader<R> {
    /// Records where each frame read starts into `starts`.
    pub(crate) fn record_starts(&mut self, starts: FrameStarts) {
        self.starts = Some(starts);
    }

    /// `reading` is kept by the source; `shown` is set by the reader to
    /// where the frame it hands out was read.
    pub(crate) fn new(
        source: R,
        threads: u32,
        reading: Rc<Cell<usize>>,
        shown: Rc<Cell<(usize, usize)>>,
    ) -> io::Result<FrameReader<R>> {
        let workers = workers(threads);
        let pool = Pool::new(
            "unzstd",
            workers,
            || {
                let mut d = zstd::bulk::Decompressor::new()?;
                // Behaviour §6.1 caps the window at 2^27 so that `zstd -d` needs no flags.
                d.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(27))?;
                Ok(d)
            },
            |d, frame, _| decompress_frame(d, frame),
        )?;
        Ok(FrameReader {
            source,
            pool,
            workers,
            reading,
            shown,
            pending: VecDeque::new(),
            in_flight: 0,
            current: Vec::new(),
            at: 0,
            eof: false,
            failed: None,
            frames: 0,
            starts: None,
            read: (0, 0),
        })
    }

    /// Whether another frame may go to the workers: one per worker and
    /// one more, within [`READ_BUDGET`] (judged by the last frame's size),
    /// and always two.
    fn room(&self, last: u64) -> bool {
        let n = self.pending.len();
        n < 2 || (n <= self.workers && self.in_flight + last <= READ_BUDGET)
    }

    fn fill(&mut self) {
        let mut last = 0;
        while !self.eof && self.room(last) {
            let from = self.reading.get();
            let next = next_frame(&mut self.source, self.frames + 1);
            let at = (from, self.reading.get());
            match next.and_then(|f| f.map(|f| self.submit(f, at)).transpose()) {
                Ok(Some(bytes)) => last = bytes,
                Ok(None) => self.eof = true,
                Err(e) => {
                    self.failed = Some((e, at));
                    self.eof = true;
                }
            }
        }
    }

    /// Hands `frame`, read at `at`, to the workers; its bytes in flight.
    fn submit(&mut self, frame: Frame, at: (usize, usize)) -> io::Result<u64> {
        let (tar, set) = self.read;
        let start = set + frame.skipped;
        if let Some(starts) = &self.starts {
            starts.borrow_mut().push((tar, start));
        }
        self.read = (tar + frame.content, start + frame.bytes.len() as u64);
        let bytes = frame.bytes.len() as u64 + frame.content;
        self.pool.submit(frame.bytes)?;
        self.frames += 1;
        self.in_flight += bytes;
        self.pending.push_back(Pending {
            at,
            number: self.frames,
            bytes,
        });
        Ok(bytes)
    }
}

impl<R: BufRead> Read for FrameReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.at < self.current.len() {
                let n = buf.len().min(self.current.len() - self.at);
                buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            // The frame handed out is done with: its memory goes first.
            self.current = Vec::new();
            self.fill();
            let Some(out) = self.pool.next(None) else {
                return match self.failed.take() {
                    Some((e, at)) => {
                        self.shown.set(at);
                        Err(e)
                    }
                    None => Ok(0),
                };
            };
            let Some(p) = self.pending.pop_front() else {
                return Err(io::Error::other("a frame came back that was not sent"));
            };
            self.in_flight -= p.bytes;
            self.shown.set(p.at);
            self.current =
                out.map_err(|e| io::Error::new(e.kind(), format!("zstd frame {}: {e}", p.number)))?;
            self.at = 0;
        }
    }
}

/// One frame, whose header declares its content size.
pub(crate) fn decompress_frame(
    d: &mut zstd::bulk::Decompressor<'static>,
    frame: &[u8],
) -> io::Result<Vec<u8>> {
    let size = declared_size(frame)?;
    let out = d.decompress(frame, size)?;
    if out.len() != size {
        return Err(invalid(format!(
            "it holds {} bytes where its header declares {size}",
            out.len()
        )));
    }
    Ok(out)
}

/// The content size a frame's header declares, within [`MAX_CONTENT`].
fn declared_size(frame: &[u8]) -> io::Result<usize> {
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) if n <= MAX_CONTENT => Ok(n as usize),
        Ok(Some(n)) => Err(invalid(format!(
            "it declares {n} bytes (accepted: at most {MAX_CONTENT}, as sauve writes them)"
        ))),
        _ => Err(invalid(
            "it does not declare its size (accepted: frames as sauve writes them)".to_owned(),
        )),
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads exactly `buf.len()` bytes, or none at the end of the stream.
fn read_or_end(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the archive ends inside a zstd frame header",
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A frame read whole, and the content size its header declares.
struct Frame {
    bytes: Vec<u8>,
    content: u64,
    /// The bytes of skippable frames read before it.
    skipped: u64,
}

/// The next zstd frame of `r`, whole, skipping skippable frames; `None` at
/// the end. The frame is found by its header and block headers, without
/// decompressing it (RFC 8878, section 3.1).
fn next_frame(r: &mut impl BufRead, number: u64) -> io::Result<Option<Frame>> {
    let eof = |what: &str| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the archive ends inside zstd frame {number} ({what})"),
        )
    };
    let mut skipped = 0;
    loop {
        let mut magic = [0u8; 4];
        if !read_or_end(r, &mut magic)? {
            return Ok(None);
        }
        let m = u32::from_le_bytes(magic);
        if m & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
            let mut size = [0u8; 4];
            r.read_exact(&mut size)
                .map_err(|_| eof("a skippable frame"))?;
            let size = u64::from(u32::from_le_bytes(size));
            let skipped_now = io::copy(&mut r.take(size), &mut io::sink())?;
            if skipped_now != size {
                return Err(eof("a skippable frame"));
            }
            skipped += 8 + size;
            continue;
        }
        if m != ZSTD_MAGIC {
            return Err(invalid(format!(
                "zstd frame {number} does not start with zstd's magic number (accepted: zstd frames)"
            )));
        }
        let mut frame = magic.to_vec();
        let mut descriptor = [0u8; 1];
        r.read_exact(&mut descriptor)
            .map_err(|_| eof("its header"))?;
        let fhd = descriptor[0];
        if fhd & 0x08 != 0 {
            return Err(invalid(format!(
                "zstd frame {number} sets a reserved bit of its header"
            )));
        }
        let single_segment = fhd & 0x20 != 0;
        let checksum = fhd & 0x04 != 0;
        let dict_len = [0, 1, 2, 4][usize::from(fhd & 0x03)];
        let fcs_len = match fhd >> 6 {
            0 if single_segment => 1,
            0 => 0,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let header_len = usize::from(!single_segment) + dict_len + fcs_len;
        frame.push(fhd);
        let start = frame.len();
        frame.resize(start + header_len, 0);
        r.read_exact(&mut frame[start..])
            .map_err(|_| eof("its header"))?;
        // Refused before its blocks are read: a frame sauve did not write.
        let content = declared_size(&frame)
            .map_err(|e| io::Error::new(e.kind(), format!("zstd frame {number}: {e}")))?;
        loop {
            let mut block = [0u8; 3];
            r.read_exact(&mut block)
                .map_err(|_| eof("a block header"))?;
            frame.extend_from_slice(&block);
            let header = u32::from(block[0]) | u32::from(block[1]) << 8 | u32::from(block[2]) << 16;
            let last = header & 1 != 0;
            let size = u64::from(header >> 3);
            let stored = match (header >> 1) & 3 {
                0 | 2 => size,
                1 => 1,
                _ => {
                    return Err(invalid(format!(
                        "zstd frame {number} has a block of the reserved type"
                    )));
                }
            };
            if frame.len() as u64 + stored > MAX_COMPRESSED {
                return Err(invalid(format!(
                    "zstd frame {number} is larger than {MAX_COMPRESSED} bytes (accepted: frames as sauve writes them)"
                )));
            }
            let at = frame.len();
            frame.resize(at + stored as usize, 0);
            r.read_exact(&mut frame[at..]).map_err(|_| eof("a block"))?;
            if last {
                break;
            }
        }
        if checksum {
            let at = frame.len();
            frame.resize(at + 4, 0);
            r.read_exact(&mut frame[at..])
                .map_err(|_| eof("its checksum"))?;
        }
        return Ok(Some(Frame {
            bytes: frame,
            content: content as u64,
            skipped,
        }));
    }
}

/// A test's hold on the frames of the sets written into one folder: each
/// frame waits in its worker, before a byte of it is compressed, until the
/// hold is released. With it a test proves, without timing anything, that
/// Stop ends a run while a frame is still in flight.
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) mod hold {
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Condvar, Mutex, Weak};

    use tokio::sync::watch;

    /// What the held frames did so far.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct HoldCounts {
        /// Frames waiting in a worker now.
        pub holding: usize,
        /// Frames that reached the hold, in all.
        pub reached: usize,
        /// Frames compressed whole after the release.
        pub compressed: usize,
        /// Frames their worker gave up after the release (their writer was gone).
        pub abandoned: usize,
    }

    pub(crate) struct Gate {
        released: Mutex<bool>,
        open: Condvar,
        counts: watch::Sender<HoldCounts>,
    }

    /// The holds by folder; a hold dropped leaves a dead entry, swept at
    /// the next look.
    static GATES: Mutex<Vec<(PathBuf, Weak<Gate>)>> = Mutex::new(Vec::new());

    /// `path` with its links resolved, or its folder's when it does not
    /// exist yet (a destination the run creates).
    fn resolved(path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => {
                std::fs::canonicalize(dir).map_or_else(|_| path.to_path_buf(), |d| d.join(name))
            }
            _ => path.to_path_buf(),
        })
    }

    /// The hold on the sets written into `destination`, if a test made one.
    pub(crate) fn gate_for(destination: &Path) -> Option<Arc<Gate>> {
        let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
        gates.retain(|(_, g)| g.strong_count() > 0);
        let wanted = resolved(destination);
        gates
            .iter()
            .find(|(p, _)| *p == wanted)
            .and_then(|(_, g)| g.upgrade())
    }

    impl Gate {
        /// Waits, in a worker, until the hold is released.
        pub(crate) fn pass(&self) {
            self.counts.send_modify(|c| {
                c.holding += 1;
                c.reached += 1;
            });
            let mut released = self.released.lock().unwrap_or_else(|e| e.into_inner());
            while !*released {
                released = self.open.wait(released).unwrap_or_else(|e| e.into_inner());
            }
            drop(released);
            self.counts.send_modify(|c| c.holding -= 1);
        }

        /// A frame held earlier left its worker, compressed or abandoned.
        pub(crate) fn left(&self, compressed: bool) {
            self.counts.send_modify(|c| {
                if compressed {
                    c.compressed += 1;
                } else {
                    c.abandoned += 1;
                }
            });
        }

        fn release(&self) {
            *self.released.lock().unwrap_or_else(|e| e.into_inner()) = true;
            self.open.notify_all();
        }
    }

    /// See the module documentation. Dropped, it releases its frames.
    pub struct FrameHold {
        gate: Arc<Gate>,
        counts: watch::Receiver<HoldCounts>,
    }

    impl FrameHold {
        /// Holds every frame of the sets written into `destination` (which
        /// need not exist yet) from now until [`FrameHold::release`].
        pub fn on(destination: &Path) -> FrameHold {
            let (tx, counts) = watch::channel(HoldCounts::default());
            let gate = Arc::new(Gate {
                released: Mutex::new(false),
                open: Condvar::new(),
                counts: tx,
            });
            GATES
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((resolved(destination), Arc::downgrade(&gate)));
            FrameHold { gate, counts }
        }

        /// What the held frames did so far.
        pub fn counts(&self) -> HoldCounts {
            *self.counts.borrow()
        }

        /// Waits until the counts satisfy `ok`, and returns them.
        pub async fn until(&self, ok: impl Fn(&HoldCounts) -> bool) -> HoldCounts {
            let mut counts = self.counts.clone();
            // The sender lives in the gate, which this hold keeps.
            match counts.wait_for(|c| ok(c)).await {
                Ok(c) => *c,
                Err(_) => self.counts(),
            }
        }

        /// Waits until a worker holds a frame.
        pub async fn held(&self) -> HoldCounts {
            self.until(|c| c.holding > 0).await
        }

        /// Lets the held frames, and every later one, go.
        pub fn release(&self) {
            self.gate.release();
        }
    }

    impl Drop for FrameHold {
        fn drop(&mut self) {
            self.gate.release();
        }
    }
}

/// Without the test hooks, no frame is ever held.
#[cfg(not(any(test, feature = "test-hooks")))]
mod hold {
    pub(crate) enum Gate {}

    impl Gate {
        pub(crate) fn pass(&self) {
            match *self {}
        }

        pub(crate) fn left(&self, _compressed: bool) {
            match *self {}
        }
    }

    pub(crate) fn gate_for(_destination: &std::path::Path) -> Option<std::sync::Arc<Gate>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The destination of frames no test holds.
    const NOWHERE: &str = "/nonexistent/sauve-frames";

    fn compress(data: &[u8], level: Compression, threads: u32) -> Vec<u8> {
        let mut w = FrameWriter::new(Vec::new(), level, threads, NOWHERE.as_ref()).unwrap();
        // Odd write sizes cross frame boundaries.
        for chunk in data.chunks(777_777) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(stream: &[u8], threads: u32) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        FrameReader::new(
            io::BufReader::new(stream),
            threads,
            Rc::default(),
            Rc::default(),
        )?
        .read_to_end(&mut out)?;
        Ok(out)
    }

    /// Compressible, with some noise, spanning several frames.
    fn sample(len: usize) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(7);
        (0..len)
            .map(|i| {
                if i % 7 == 0 {
                    rng.u8(..)
                } else {
                    (i / 1000) as u8
                }
            })
            .collect()
    }

    #[test]
    fn frames_are_independent_and_zstd_reads_the_run_as_one_stream() {
        let data = sample(3 * FAST_FRAME + 12345);
        let z = compress(&data, Compression::Fast, 2);
        assert!(is_framed(&z));
        // zstd's own streaming decoder (what `zstd -d` does) reads the run.
        assert_eq!(zstd::stream::decode_all(&z[..]).unwrap(), data);
        // Four frames, found without decompressing, each decodable alone.
        let mut r = io::BufReader::new(&z[..]);
        let mut frames = 0;
        while let Some(f) = next_frame(&mut r, frames + 1).unwrap() {
            let f = f.bytes;
            assert_eq!(zstd::zstd_safe::find_frame_compressed_size(&f), Ok(f.len()));
            frames += 1;
        }
        assert_eq!(frames, 4);
        assert_eq!(read_all(&z, 2).unwrap(), data);
        assert_eq!(read_all(&z, 1).unwrap(), data);
    }

    #[test]
    fn an_empty_stream_is_one_empty_frame() {
        let z = compress(&[], Compression::Fast, 1);
        assert!(is_framed(&z));
        assert_eq!(zstd::stream::decode_all(&z[..]).unwrap(), b"");
        assert_eq!(read_all(&z, 1).unwrap(), b"");
    }

    #[test]
    fn compact_frames_read_back() {
        let data = sample(COMPACT_FRAME + 4096);
        let z = compress(&data, Compression::Compact, 0);
        assert_eq!(zstd::stream::decode_all(&z[..]).unwrap(), data);
        assert_eq!(read_all(&z, 0).unwrap(), data);
    }

    /// Frames held in their worker (the test hold): Stop ends the writer's
    /// wait for them, in a cut or in `finish`, at every level, while they
    /// are still held; released, they are abandoned, never compressed.
    #[test]
    fn stop_ends_a_wait_for_a_frame_still_in_flight_which_is_then_abandoned() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // (level, workers, bytes written): Fast on one worker holds two
        // frames in flight, so a third waits in a cut; one frame waits in
        // `finish`.
        let cases = [
            (Compression::Fast, 1, 3 * FAST_FRAME + 1),
            (Compression::Fast, 2, 1000),
            (Compression::Compact, 1, 1000),
            (Compression::Compact, 3, COMPACT_FRAME / 2),
        ];
        for (i, (level, threads, len)) in cases.into_iter().enumerate() {
            let case = format!("{level:?} on {threads} worker(s), {len} bytes");
            let dest = std::path::PathBuf::from(format!("/nonexistent/sauve-held-{i}"));
            let hold = hold::FrameHold::on(&dest);
            let stop = Arc::new(AtomicBool::new(false));
            let mut w = FrameWriter::new(Vec::new(), level, threads, &dest).unwrap();
            let asked = Arc::clone(&stop);
            w.stop_when(Arc::new(move || asked.load(Ordering::Relaxed)));
            let data = sample(len);
            let (tx, writer) = mpsc::channel();
            std::thread::spawn(move || {
                // The writer (and its pool) is dropped when this returns.
                let _ = tx.send(w.write_all(&data).and_then(|()| w.finish().map(drop)));
            });
            runtime.block_on(hold.held());
            stop.store(true, Ordering::Relaxed);
            // A guard, not a measure: without the fix the wait never ends.
            let e = writer
                .recv_timeout(Duration::from_secs(60))
                .expect("the wait for a held frame ended at Stop")
                .unwrap_err();
            assert!(
                e.get_ref().is_some_and(|e| e.is::<StopAsked>()),
                "{case}: {e}"
            );
            assert!(
                hold.counts().holding > 0,
                "{case}: the write ended while its frame was held"
            );
            hold.release();
            let end = runtime.block_on(
                hold.until(|c| c.holding == 0 && c.compressed + c.abandoned == c.reached),
            );
            assert_eq!(end.compressed, 0, "{case}: {end:?}");
            assert!(end.abandoned > 0, "{case}: {end:?}");
        }
    }

    #[test]
    fn skippable_frames_are_skipped() {
        let data = sample(5000);
        let mut z = vec![0x5A, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3];
        z.extend(compress(&data, Compression::Fast, 1));
        assert_eq!(read_all(&z, 1).unwrap(), data);
    }

    #[test]
    fn a_stream_of_unknown_size_is_not_framed() {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        e.write_all(b"hello").unwrap();
        assert!(!is_framed(&e.finish().unwrap()));
    }

    #[test]
    fn damage_is_an_error_naming_the_frame() {
        let data = sample(2 * FAST_FRAME + 10);
        let z = compress(&data, Compression::Fast, 2);
        // Cut inside the last frame.
        let e = read_all(&z[..z.len() - 3], 2).unwrap_err();
        assert!(e.to_string().contains("zstd frame 3"), "{e}");
        // A flipped byte inside a block fails the frame's checksum or decoding.
        let mut bad = z.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x55;
        assert!(read_all(&bad, 2).is_err());
        // Garbage after the frames.
        let mut tail = z.clone();
        tail.extend_from_slice(b"not zstd");
        let e = read_all(&tail, 2).unwrap_err();
        assert!(e.to_string().contains("magic"), "{e}");
    }

    /// Damage met while reading ahead waits until the frames before it are
    /// handed out: the tar layer above names the last entry read whole.
    #[test]
    fn damage_is_reported_after_the_frames_before_it() {
        let data = sample(3 * FAST_FRAME + 10);
        let z = compress(&data, Compression::Fast, 3);
        let cut = &z[..z.len() - 3];
        let mut r =
            FrameReader::new(io::BufReader::new(cut), 3, Rc::default(), Rc::default()).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        let e = loop {
            match r.read(&mut buf) {
                Ok(0) => panic!("a cut run read to its end"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(got.len(), 3 * FAST_FRAME, "every whole frame first");
        assert!(got == data[..3 * FAST_FRAME]);
        assert!(e.to_string().contains("zstd frame 4"), "{e}");
    }

    #[test]
    fn a_frame_declaring_more_than_sauve_writes_is_refused_from_its_header() {
        // A single frame of 17 MiB, as `zstd` would write a file of that size.
        let big = vec![7u8; (MAX_CONTENT + 1) as usize];
        let z = zstd::bulk::compress(&big, 1).unwrap();
        assert!(!is_framed(&z), "read by the streaming decoder instead");
        let mut run = compress(b"first", Compression::Fast, 1);
        run.extend(&z);
        let e = read_all(&run, 1).unwrap_err();
        assert!(e.to_string().contains("zstd frame 2: it declares"), "{e}");
    }

    #[test]
    fn a_frame_without_its_size_in_a_framed_run_is_refused() {
        let mut z = compress(b"first", Compression::Fast, 1);
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        e.write_all(b"second").unwrap();
        z.extend(e.finish().unwrap());
        let e = read_all(&z, 1).unwrap_err();
        assert!(
            e.to_string()
                .contains("zstd frame 2: it does not declare its size"),
            "{e}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// Any length, written in any pieces, on any number of workers:
        /// frames of at most the frame size, each declaring it, which
        /// zstd's streaming decoder and the parallel reader both read back
        /// to the same bytes.
        #[test]
        fn any_stream_reads_back_frame_by_frame(
            len in 0usize..(2 * FAST_FRAME + 100_000),
            piece in 1usize..3_000_000,
            threads in 1u32..4,
            seed in 0u64..1000,
        ) {
            let mut rng = fastrand::Rng::with_seed(seed);
            let data: Vec<u8> = (0..len).map(|i| if i % 5 == 0 { rng.u8(..) } else { b'x' }).collect();
            let mut w = FrameWriter::new(Vec::new(), Compression::Fast, threads, NOWHERE.as_ref()).unwrap();
            for chunk in data.chunks(piece) {
                w.write_all(chunk).unwrap();
            }
            let z = w.finish().unwrap();
            let mut r = io::BufReader::new(&z[..]);
            let mut sizes = Vec::new();
            while let Some(f) = next_frame(&mut r, 0).unwrap() {
                prop_assert_eq!(
                    zstd::zstd_safe::get_frame_content_size(&f.bytes).unwrap(),
                    Some(f.content)
                );
                sizes.push(f.content);
            }
            prop_assert_eq!(sizes.iter().sum::<u64>(), len as u64);
            prop_assert!(sizes.iter().all(|&n| n <= FAST_FRAME as u64));
            prop_assert_eq!(sizes.len(), len.div_ceil(FAST_FRAME).max(1));
            prop_assert_eq!(zstd::stream::decode_all(&z[..]).unwrap(), data.clone());
            prop_assert_eq!(read_all(&z, threads).unwrap(), data);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// A run with a flipped bit, cut short: the reader never panics, a
        /// flip is always found (an error, or the exact data when the bit
        /// did not matter), and a run cut at a frame's end reads as a
        /// prefix, which the tar layer above refuses.
        #[test]
        fn damaged_runs_never_panic(cut in 0usize..4096, flip in 0usize..4096, bit in 0u8..8) {
            let data = sample(FAST_FRAME + 3000);
            let mut z = compress(&data, Compression::Fast, 2);
            let flip = flip % z.len();
            z[flip] ^= 1 << bit;
            z.truncate(z.len().saturating_sub(cut));
            if let Ok(out) = read_all(&z, 2) {
                prop_assert!(data.starts_with(&out));
                if cut == 0 {
                    prop_assert_eq!(out, data);
                }
            }
        }
    }
}
