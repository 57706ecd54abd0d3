;;; guix.scm — Guix package definition for the netgrant toolkit.
;;;
;;;   npm ci              # builds packages/netgrant/dist (bundle + koffi.node)
;;;   guix build -f guix.scm
;;;   guix shell -f guix.scm -- fd-send ...
;;;
;;; The build needs the npm registry (koffi's prebuilt native module,
;;; esbuild, marked-man), which a Guix build container does not reach, so
;;; this package takes what `npm ci` built in the checkout: one JavaScript
;;; file plus koffi.node, no node_modules, and the roff man pages. It
;;; installs the same tree as `npm run install-prefix -- PREFIX`
;;; (docs/install.md): the bundle and entry points under lib/netgrant (the
;;; entry points patched to run Guix's node), one link per program in bin/,
;;; the man pages under share/man/man{1,7,8}, the example s6 service
;;; directories and systemd units under share/netgrant with @BINDIR@ set to
;;; this package's bin/, and the markdown docs under share/doc/netgrant.

(use-modules (guix packages)
             (guix gexp)
             (guix build-system copy)
             ((guix licenses) #:prefix license:)
             (gnu packages node)
             (gnu packages skarnet)
             (gnu packages linux))

(define %source-dir (dirname (current-filename)))

(define (netgrant-file? file stat)
  ;; The built toolkit, its entry points and docs; never node_modules.
  (let ((rel (string-drop file (string-length %source-dir))))
    (or (string=? rel "")
        (string-prefix? "/packages" rel)
        (string-prefix? "/docs" rel)
        (string=? rel "/README.md"))
    (not (string-contains rel "node_modules"))))

(package
  (name "netgrant")
  (version "0.1.0")
  (source (local-file %source-dir "netgrant-checkout"
                      #:recursive? #t
                      #:select? netgrant-file?))
  (build-system copy-build-system)
  (arguments
   (list
    #:install-plan
    #~'(("packages/netgrant/dist/" "lib/netgrant/dist/"
         #:include ("netgrant.cjs" "netgrant.cjs.cache" "load.cjs" "koffi.node"))
        ("packages/netgrant/bin/" "lib/netgrant/bin/")
        ("packages/netgrant/dist/man/" "share/man/man1/" #:include-regexp ("\\.1$"))
        ("packages/netgrant/dist/man/" "share/man/man7/" #:include-regexp ("\\.7$"))
        ("packages/netgrant/dist/man/" "share/man/man8/" #:include-regexp ("\\.8$"))
        ("packages/netgrant/share/" "share/netgrant/")
        ("docs/" "share/doc/netgrant/"))
    #:phases
    #~(modify-phases %standard-phases
        (add-before 'install 'check-bundle
          (lambda _
            (unless (and (file-exists? "packages/netgrant/dist/netgrant.cjs")
                         (file-exists? "packages/netgrant/dist/man/netgrant.7"))
              (error "run `npm ci` in the checkout first: the bundle or the man pages are missing"))))
        (add-after 'install 'link-programs
          (lambda _
            (let ((bin (string-append #$output "/bin"))
                  (lib (string-append #$output "/lib/netgrant/bin")))
              (mkdir-p bin)
              (for-each (lambda (prog)
                          (chmod prog #o555)
                          (symlink prog (string-append bin "/" (basename prog))))
                        (find-files lib)))))
        (add-after 'link-programs 'set-bindir
          ;; The example services name the programs by absolute path.
          (lambda _
            (substitute* (find-files (string-append #$output "/share/netgrant"))
              (("@BINDIR@") (string-append #$output "/bin"))))))))
  (inputs (list node-lts))
  (propagated-inputs (list s6 execline iproute))
  (synopsis "Real kernel network interfaces for unprivileged users, VMs and containers")
  (description
   "netgrant is a toolkit of small programs in the s6/UCSPI tradition --
fd-send, fd-recv, peer-check, cap-drop, netns-enter, ipc-pair, mktap,
bridge-acl, netgrant-bridge-helper, netgrant-serve, mkipvlan, mkmacvlan,
mkveth, netgrant-reap, netgrant-dhcpd, mkmacvtap, netgrant-cni, mkphys -- that chain by exec and
inherited file descriptors.  A root
super-server checks the peer, creates a tap, an ipvlan/macvlan interface or
a routed veth pair
and passes its file descriptor over a unix socket, so that QEMU and
containers get real interfaces without setuid helpers.")
  (home-page "https://netgrant.invalid/")
  (license license:expat))
